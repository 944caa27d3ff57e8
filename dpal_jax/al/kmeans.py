"""k-means++ seeding (D² sampling), the one implementation BADGE and LHD select with; jitted.

Points are tensor products g_i = f¹_i ⊗ f²_i ⊗ … of per-point factors (BADGE: features ⊗ residuals; LHD
and plain embeddings: one factor), so that a gradient embedding is never materialised:
⟨g_i, g_j⟩ = Π_m ⟨fᵐ_i, fᵐ_j⟩ and ‖g_i − g_c‖² = ‖g_i‖² + ‖g_c‖² − 2⟨g_i, g_c⟩. With one factor the
distance is summed from the differences instead (the same cost), which the expansion would lose in float32
for points close together far from the origin.

The first center is the point of largest ‖g‖; each next one is drawn among the points not yet chosen
with probability ∝ D(x)², D the distance to the nearest chosen center (Arthur & Vassilvitskii 2007, as
BADGE codes it: only chosen points are centers, the origin is not one). If every open point coincides
with a center, the draw is uniform over them. Drawing among the open points is the law of drawing from
all points and rejecting repeats, so there are never repeated picks. Draw t uses the Gumbel noise
`gumbel_noise(key, t, n)`: argmax(log D² + Gumbel) is a D²-weighted draw, and a reference may recompute
the same draws from the same key.

*Formal guarantees*: none. One candidate's embedding moves the probabilities of every later pick, so
k-means++ over private embeddings is not a per-candidate mechanism and is not differentially private;
the strategies using it refuse a finite privacy.epsilon_al (`strategies.check_selection`).
"""

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp


def gumbel_noise(key: jax.Array, t: int | jax.Array, n: int) -> jax.Array:
  """The standard Gumbel noise [n] of draw t (t ≥ 1) of `seeding` under `key`."""
  return jax.random.gumbel(jax.random.fold_in(key, t), (n,), jnp.float32)


def sq_norms(factors: Sequence[jax.Array]) -> jax.Array:
  """‖g_i‖² = Π_m ‖fᵐ_i‖² for every point."""
  out = 1.0
  for f in factors:
    out = out * jnp.sum(f**2, -1)
  return out


def sq_dist_to(factors: Sequence[jax.Array], norms: jax.Array, c: jax.Array) -> jax.Array:
  """‖g_i − g_c‖² for every point i: from the differences with one factor (exact for copies, no
  cancellation far from the origin), else from the norms and inner products (clamped at 0)."""
  if len(factors) == 1:
    return jnp.sum((factors[0] - factors[0][c])**2, -1)
  inner = 1.0
  for f in factors:
    inner = inner * (f @ f[c])
  return jnp.maximum(norms + norms[c] - 2.0 * inner, 0.0)


def _flat(factors) -> tuple:
  return tuple(jnp.asarray(f, jnp.float32).reshape(f.shape[0], -1) for f in factors)


@functools.partial(jax.jit, static_argnames='k')
def seeding(factors: Sequence[jax.Array], key: jax.Array, *, k: int) -> jax.Array:
  """k distinct indices (int32) by k-means++ seeding on g_i = ⊗_m factors[m][i].

  Args:
    factors: one or more arrays [N, ...] (each flattened per point); N ≥ k ≥ 1.
    key: the JAX key of the D² draws (draw t uses `gumbel_noise(key, t, N)`).
    k: how many centers to choose.

  Returns:
    [k] indices: the largest ‖g‖ first, then D²-weighted draws without replacement.

  >>> pts = jnp.array([[0.0, 0.0], [0.0, 0.1], [5.0, 0.0]])
  >>> chosen = [int(i) for i in seeding((pts,), jax.random.key(0), k=3)]
  >>> chosen[0], sorted(chosen)
  (2, [0, 1, 2])
  """
  factors = _flat(factors)
  n = factors[0].shape[0]
  norms = sq_norms(factors)
  first = jnp.argmax(norms)
  chosen = jnp.zeros(k, jnp.int32).at[0].set(first)
  taken = jnp.zeros(n, bool).at[first].set(True)

  def pick(t, state):
    chosen, taken, min_d2 = state
    open_d2 = jnp.where(taken, 0.0, min_d2)
    logits = jnp.where(jnp.sum(open_d2) > 0, jnp.log(open_d2), 0.0)
    logits = jnp.where(taken, -jnp.inf, logits)
    c = jnp.argmax(logits + gumbel_noise(key, t, n)).astype(jnp.int32)
    return chosen.at[t].set(c), taken.at[c].set(True), jnp.minimum(min_d2, sq_dist_to(factors, norms, c))

  return jax.lax.fori_loop(1, k, pick, (chosen, taken, sq_dist_to(factors, norms, first)))[0]
