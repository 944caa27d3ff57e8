"""Peer-study feedback scores: the disagreement of P peer models on each candidate, larger = select.

For the predictions p_1 … p_P [N, P, K] of P peers (candidates first, so that scoring streams in
batches; Peer Study Learning, docs/psl.md §3):

  summed KL   d(x) = Σ_{i<j} KL(p_i(x) ‖ p_j(x))                   unbounded: exact selection only
  mean JS     s(x) = (1 / #pairs) Σ_{i<j} JS(p_i(x), p_j(x))        in [0, log 2]: private selection

with JS(p, q) = ½ KL(p ‖ m) + ½ KL(q ‖ m), m = (p + q) / 2, in nats; each JS term lies in [0, log 2], so
the mean does too (the sum over the P(P − 1)/2 pairs ranks the candidates the same way). A candidate's
score reads only its own row, so replacing one candidate changes one score by at most log 2: the
sensitivity the private top-k of `privacy.mechanisms` is calibrated on (clamp Δ = log 2).
"""

import functools
import math

import jax
import jax.numpy as jnp

LOG_OFFSET = 1e-10
JS_RANGE = math.log(2.0)   # Δ: the largest JS divergence of two distributions, in nats


def _pairs(probs: jax.Array) -> tuple[jax.Array, jax.Array]:
  """The two members of every pair i < j of peers (axis −2 of [..., P, K]), each [..., #pairs, K]."""
  num_peers = probs.shape[-2]
  if num_peers < 2:
    raise ValueError(f'peer-study scores need at least 2 peers, got {num_peers}')
  first, second = zip(*[(i, j) for i in range(num_peers) for j in range(i + 1, num_peers)])
  return probs[..., jnp.array(first), :], probs[..., jnp.array(second), :]


def _kl(p: jax.Array, q: jax.Array) -> jax.Array:
  """KL(p ‖ q) over the last axis, in nats, with 0·log 0 = 0."""
  return jnp.sum(jnp.where(p > 0, p * (jnp.log(p + LOG_OFFSET) - jnp.log(q + LOG_OFFSET)), 0.0), axis=-1)


@functools.partial(jax.jit, static_argnames='multilabel')
def summed_kl(probs: jax.Array, *, multilabel: bool = False) -> jax.Array:
  """Σ_{i<j} KL(p_i ‖ p_j) of peer probabilities [..., P, K] (P ≥ 2): the source's feedback score."""
  del multilabel  # single-label only (the strategy refuses multi-label data)
  return jnp.sum(_kl(*_pairs(probs)), axis=-1)


@functools.partial(jax.jit, static_argnames='multilabel')
def mean_js(probs: jax.Array, *, multilabel: bool = False) -> jax.Array:
  """The mean pairwise Jensen–Shannon divergence of peer probabilities [..., P, K], in [0, log 2]."""
  del multilabel
  p, q = _pairs(probs)
  m = (p + q) / 2
  js = 0.5 * _kl(p, m) + 0.5 * _kl(q, m)
  return jnp.clip(jnp.mean(js, axis=-1), 0.0, JS_RANGE)
