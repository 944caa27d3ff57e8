"""The peer-study losses (docs/psl.md §2), jitted JAX on logits.

In-class study (one peer, a batch with labels y and the teacher's logits z_t):

  L_in = mean_x [ (1 − α)·CE(y, softmax(z_s)) + α·τ²·KL(softmax(z_t/τ) ‖ softmax(z_s/τ)) ]

(Hinton distillation plus the labels; α = 0.1, τ = 4 in the source). It is a sum of per-peer terms, so P
stacked peers trained on Σ_p L_in(p) follow exactly the P separate trainings.

Out-of-class study (P peers on an unlabeled batch): the discrepancy d(x) = Σ_{i<j} KL(p_i(x) ‖ p_j(x));
the batch splits into the consistent set C (every peer's argmax agrees) and the inconsistent set U; the
margin ranking loss asks every inconsistent example to be more discrepant than every consistent one by ξ:

  L_out = mean_{c ∈ C, u ∈ U} max(0, d(c) − d(u) + ξ)      (0 when C or U is empty; ξ = 0.01)

Both read the examples they are computed on without noise: see `dpal_jax.psl.loop` for what that costs.
"""

import jax
import jax.numpy as jnp

from dpal_jax.al import peer_study

ALPHA = 0.1
TAU = 4.0
XI = 0.01


def in_class(peer_logits: jax.Array, teacher_logits: jax.Array, labels: jax.Array, *,
             alpha: float = ALPHA, tau: float = TAU) -> jax.Array:
  """L_in of one peer: logits [N, K] of the peer and of the teacher, int labels [N]; a scalar."""
  log_p = jax.nn.log_softmax(peer_logits)
  ce = -jnp.take_along_axis(log_p, labels[:, None].astype(jnp.int32), axis=-1)[:, 0]
  log_s = jax.nn.log_softmax(peer_logits / tau)
  log_t = jax.nn.log_softmax(teacher_logits / tau)
  kl = jnp.sum(jnp.exp(log_t) * (log_t - log_s), axis=-1)
  return jnp.mean((1 - alpha) * ce + alpha * tau ** 2 * kl)


def discrepancy(peer_logits: jax.Array) -> jax.Array:
  """d(x) = Σ_{i<j} KL(p_i(x) ‖ p_j(x)) of peer logits [P, N, K] (P ≥ 2); [N]. The feedback score of
  `al.peer_study.summed_kl`, here on the training layout (peers first)."""
  return peer_study.summed_kl(jax.nn.softmax(jnp.moveaxis(peer_logits, 0, -2)))


def consistent(peer_logits: jax.Array) -> jax.Array:
  """True where every peer's argmax agrees; bool [N] of peer logits [P, N, K]."""
  votes = jnp.argmax(peer_logits, axis=-1)
  return jnp.all(votes == votes[:1], axis=0)


def out_of_class(peer_logits: jax.Array, *, xi: float = XI, mask: jax.Array | None = None) -> jax.Array:
  """L_out of peer logits [P, N, K] on one unlabeled batch; `mask` [N] drops padding rows. A scalar."""
  d = discrepancy(peer_logits)
  real = jnp.ones(d.shape, bool) if mask is None else mask
  agree = consistent(peer_logits)
  c, u = agree & real, ~agree & real
  hinge = jnp.maximum(0.0, d[:, None] - d[None, :] + xi)
  pairs = c[:, None] & u[None, :]
  count = jnp.sum(pairs)
  return jnp.where(count > 0, jnp.sum(jnp.where(pairs, hinge, 0.0)) / jnp.maximum(count, 1), 0.0)
