"""Sum of per-example clipped gradients, the general path: `jax.vmap` of `jax.grad`.

The model sees each example as a batch of one (with its own dropout key), so any Flax model works.
Each gradient is scaled by min(1, C / (‖g_i‖₂ + 1e-6)) over all parameters (flat clipping, as Opacus),
padded rows get weight 0 after clipping, and the weighted gradients are summed. Sum, not mean: adding
or removing one example changes the sum by at most C, which is the sensitivity the noise is calibrated to.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp

from dpal_jax.dpsgd.losses import LossFn

ApplyFn = Callable[[object, jnp.ndarray, jax.Array], jnp.ndarray]


def clip_weights(norms: jnp.ndarray, clip_norm: float, mask: jnp.ndarray) -> jnp.ndarray:
  """Per-example factors min(1, C / (‖g_i‖ + 1e-6)); exactly 0 for padded rows (mask False)."""
  return jnp.where(mask, jnp.minimum(1.0, clip_norm / (norms + 1e-6)), 0.0)


def per_example_grads(apply_fn: ApplyFn, loss_fn: LossFn, params, x: jnp.ndarray, y: jnp.ndarray,
                      keys: jax.Array):
  """(losses [B], gradients with a leading batch axis) from `apply_fn(params, x[None], key_i)`."""
  def one(x_i, y_i, key_i):
    loss = lambda p: loss_fn(apply_fn(p, x_i[None], key_i), y_i[None])[0]
    return jax.value_and_grad(loss)(params)
  return jax.vmap(one)(x, y, keys)


def clipped_grad_sum(apply_fn: ApplyFn, loss_fn: LossFn, params, x: jnp.ndarray, y: jnp.ndarray,
                     mask: jnp.ndarray, keys: jax.Array, clip_norm: float):
  """Returns (Σ_i w_i g_i, per-example losses [B]) with w_i from `clip_weights`."""
  losses, grads = per_example_grads(apply_fn, loss_fn, params, x, y, keys)
  squares = sum(jnp.sum(jnp.square(g).reshape(g.shape[0], -1), axis=1)
                for g in jax.tree.leaves(grads))
  weights = clip_weights(jnp.sqrt(squares), clip_norm, mask)
  return jax.tree.map(lambda g: jnp.tensordot(weights, g, axes=1), grads), losses
