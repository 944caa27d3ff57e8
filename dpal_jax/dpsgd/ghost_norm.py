"""Dense fast path: clipped gradient sums for models made only of `nn.Dense` layers (MLPs, heads).

For a Dense layer z = a·W + b, example i's weight gradient is a_iᵀ δ_i with δ_i = ∂L_i/∂z_i, so
‖∇W L_i‖² = ‖a_i‖²·‖δ_i‖² (or ⟨a_i a_iᵀ, δ_i δ_iᵀ⟩ when rows carry extra axes) and ‖∇b L_i‖² = ‖Σ δ_i‖²:
per-example norms ("ghost norms") without materialising B × |θ| per-example gradients. One forward and
backward pass gives a_i (recorded by a Flax method interceptor) and δ_i (the gradient of a zero
perturbation added to each Dense output); the clipped sum is then Σ_i w_i a_iᵀ δ_i per layer
(book-keeping: the re-weighted backward reduces to these contractions). The model still sees each
example as a batch of one with its own dropout key, so the result equals the vmap path's.
"""

import jax
import jax.numpy as jnp
import flax.linen as nn
from flax import traverse_util

from dpal_jax.dpsgd.clipped_grad import ApplyFn, clip_weights
from dpal_jax.dpsgd.losses import LossFn


def _is_dense_call(context) -> bool:
  return isinstance(context.module, nn.Dense) and context.method_name == '__call__'


def dense_calls(apply_fn: ApplyFn, params, x_one: jnp.ndarray, key: jax.Array) -> list:
  """The (module path, output shape) of every Dense call in one forward pass, in call order."""
  calls = []

  def record(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    if _is_dense_call(context):
      calls.append((context.module.path, out.shape))
    return out

  def forward(p):
    with nn.intercept_methods(record):
      return apply_fn(p, x_one, key)
  jax.eval_shape(forward, params)
  return calls


def is_dense_only(apply_fn: ApplyFn, params, x_one: jnp.ndarray, key: jax.Array) -> bool:
  """True when every parameter is the kernel or bias of a Dense layer called exactly once."""
  paths = [path for path, _ in dense_calls(apply_fn, params, x_one, key)]
  owned = {path + (name,) for path in paths for name in ('kernel', 'bias')}
  leaves = set(traverse_util.flatten_dict(params))
  return len(paths) == len(set(paths)) and bool(leaves) and leaves <= owned


def ghost_clipped_grad_sum(apply_fn: ApplyFn, loss_fn: LossFn, params, x: jnp.ndarray,
                           y: jnp.ndarray, mask: jnp.ndarray, keys: jax.Array, clip_norm: float):
  """Returns (Σ_i w_i g_i, per-example losses [B]), equal to `clipped_grad_sum` for Dense-only models."""
  out_shapes = dict(dense_calls(apply_fn, params, x[:1], keys[0]))

  def one(x_i, y_i, key_i):
    def loss(perturbations):
      inputs = {}

      def tap(next_fun, args, kwargs, context):
        if not _is_dense_call(context):
          return next_fun(*args, **kwargs)
        inputs[context.module.path] = args[0]
        return next_fun(*args, **kwargs) + perturbations[context.module.path]

      with nn.intercept_methods(tap):
        logits = apply_fn(params, x_i[None], key_i)
      return loss_fn(logits, y_i[None])[0], inputs

    zeros = {path: jnp.zeros(shape) for path, shape in out_shapes.items()}
    (value, inputs), deltas = jax.value_and_grad(loss, has_aux=True)(zeros)
    return value, inputs, deltas

  losses, inputs, deltas = jax.vmap(one)(x, y, keys)
  batch = x.shape[0]
  acts = {p: a.reshape(batch, -1, a.shape[-1]) for p, a in inputs.items()}
  grads_out = {p: d.reshape(batch, -1, d.shape[-1]) for p, d in deltas.items()}
  squares = 0.0
  for path, a in acts.items():
    d = grads_out[path]
    if a.shape[1] == 1:
      squares += jnp.sum(a[:, 0] ** 2, axis=1) * jnp.sum(d[:, 0] ** 2, axis=1)
    else:
      squares += jnp.sum(jnp.einsum('bti,bsi->bts', a, a) * jnp.einsum('bto,bso->bts', d, d), (1, 2))
    if _has_bias(params, path):
      squares += jnp.sum(jnp.sum(d, axis=1) ** 2, axis=1)
  weights = clip_weights(jnp.sqrt(squares), clip_norm, mask)
  flat = {}
  for path, a in acts.items():
    d = grads_out[path]
    weighted = (d * weights[:, None, None]).reshape(-1, d.shape[-1])
    flat[path + ('kernel',)] = a.reshape(-1, a.shape[-1]).T @ weighted   # one [B·T]-row contraction
    if _has_bias(params, path):
      flat[path + ('bias',)] = jnp.sum(weighted, axis=0)
  return traverse_util.unflatten_dict(flat), losses


def _has_bias(params, path: tuple) -> bool:
  node = params
  for name in path:
    node = node[name]
  return 'bias' in node
