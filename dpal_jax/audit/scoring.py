"""Scores of training canaries from the released iterates (white-box, every step released).

DP-SGD with plain SGD releases θ_{t+1} = θ_t − η·(Σ_{i∈B_t} clip_C(∇ℓ_i(θ_t)) + N(0, σ²C²I)) / E[B], and
its accounting covers every iterate, so an auditor may read them all. From two consecutive iterates it
recovers the released noisy sum

  G_t = (θ_t − θ_{t+1}) · E[B] / η

exactly (η and E[B] are public). A canary i sampled at step t adds its clipped gradient to G_t, so its
score is the gradient alignment summed over the steps,

  s_i = Σ_t ⟨G_t, clip_C(∇ℓ_i(θ_t))⟩ / C,

which grows by ‖clip_C(∇ℓ_i)‖² / C ≈ C each time the canary is sampled and is otherwise a sum of noise
(σ per step) and of the other examples' projections. Held-in canaries score higher. For a gradient
canary (`canaries.DiracCanaryModel`) clip_C(∇ℓ_i) = −C·e_i whatever θ_t, so its alignment is −G_t[c_i]
(`dirac`): C per step that sampled it plus N(0, σ²C²) per step, and no interference at all.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

CHUNK = 128   # canaries per vmapped gradient batch (bounds memory at CHUNK × the parameter count)


def released_sum(params_before, params_after, *, learning_rate: float, expected_batch_size: float):
  """G_t = (θ_t − θ_{t+1}) · E[B] / η: the noisy clipped-gradient sum of one plain-SGD step.

  *Formal guarantees*: exact (up to float32 rounding) for `optax.sgd` without momentum or weight decay,
  the update the audit loop requires; for any other optimizer it is not the released sum. G_t is
  post-processing of released iterates, so reading it costs no privacy beyond the step's own.
  """
  scale = expected_batch_size / learning_rate
  return jax.tree.map(lambda a, b: (a - b) * scale, params_before, params_after)


def dirac(released) -> np.ndarray:
  """−G_t[c_i] for every gradient canary i: its alignment ⟨G_t, −C·e_i⟩ / C, float64 [m]."""
  return -np.asarray(released['canary']['kernel'][:, 0], np.float64)


@functools.partial(jax.jit, static_argnames=('model', 'loss_fn'))
def _alignment_chunk(model, loss_fn, params, released, x, y, clip_norm):
  def one(xi, yi):
    grad = jax.grad(lambda p: loss_fn(model.apply({'params': p}, xi[None]), yi[None])[0])(params)
    norm = jnp.sqrt(sum(jnp.sum(g * g) for g in jax.tree.leaves(grad)))
    dot = sum(jnp.sum(g * r) for g, r in zip(jax.tree.leaves(grad), jax.tree.leaves(released)))
    return dot * jnp.minimum(1.0, clip_norm / jnp.maximum(norm, 1e-12)) / clip_norm
  return jax.vmap(one)(x, y)


def alignment(model, loss_fn, params, released, x: np.ndarray, y: np.ndarray,
              clip_norm: float) -> np.ndarray:
  """⟨G, clip_C(∇ℓ_i(params))⟩ / C for every canary (x_i, y_i): float64 [m].

  Args:
    model: the Flax classifier (applied in evaluation mode: the audit trains without dropout).
    loss_fn: (logits, y) → per-example losses (`dpsgd.losses.per_example_loss(task)`).
    params: θ_t, the iterate the step's gradients were taken at.
    released: G_t of that step (`released_sum`).
    x, y: the canaries, all m of them (included or not: the auditor does not use the coin here).
    clip_norm: C, the clip norm the claim is made for.

  *Formal guarantees*: a function of the released G_t, θ_t and the public canaries only (never of the
  coin), so any threshold rule on these scores is a valid guessing rule for `statistics.lower_bound`.
  """
  m = len(x)
  padded = -(-m // CHUNK) * CHUNK     # one chunk shape, one compile
  x = np.concatenate([x, np.zeros((padded - m, *x.shape[1:]), x.dtype)])
  y = np.concatenate([y, np.zeros((padded - m, *y.shape[1:]), y.dtype)])
  out = [_alignment_chunk(model, loss_fn, params, released, x[a:a + CHUNK], y[a:a + CHUNK],
                          np.float32(clip_norm)) for a in range(0, padded, CHUNK)]
  return np.concatenate([np.asarray(o) for o in out])[:m].astype(np.float64)
