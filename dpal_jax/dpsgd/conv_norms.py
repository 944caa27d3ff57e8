"""Conv-net fast path: clipped gradient sums for models whose parameters all belong to `nn.Conv`,
`nn.Dense` and `nn.GroupNorm` layers (ResNet9-GN, SmallCNN-like nets) and that use no dropout.

`jax.vmap` of `jax.grad` turns each conv's weight gradient into a batch-of-one (grouped) convolution,
slow on CPU. Here one batched forward and backward records, per Conv/Dense layer, its input a and the
gradient δ of the summed per-example losses w.r.t. its output (a zero perturbation added to the
output); since GroupNorm and the layers act on each example separately, δ_i = ∂L_i/∂z_i. With the
im2col patches A_i of a_i [positions P × K] example i's kernel gradient is A_iᵀ δ_i, so per layer either
  * its squared norm ‖A_iᵀ δ_i‖² = ⟨A_i A_iᵀ, δ_i δ_iᵀ⟩ ("ghost" norm, cost ∝ P²(K + C)), or
  * the per-example gradient itself (cost ∝ P·K·C), whichever is cheaper.
GroupNorm's scale and bias get per-example gradients from per-example zero perturbations
(x̂·Δscale_i + Δbias_i added to the output). Norms → clip factors w_i (as `clipped_grad.clip_weights`)
→ Σ_i w_i A_iᵀ δ_i per layer. Memory (docs/performance.md): the norms are computed layer by layer over
blocks of examples, so only one block's patches live at once; the clipped sum is the layer's own
weight-gradient contraction of a and w·δ (no patches, no per-example gradients kept).

Two ways to get from the norms to the sum (`train.grad_method`):
  * 'conv', book-keeping (`conv_clipped_grad_sum`): one backward pass; every layer's a and δ stay alive
    until all norms are known, the elementwise layers between the convolutions are recomputed in the
    backward instead of kept: ≈ 1.05× the non-private step's memory (ResNet9-GN), ≈ 60 % of its speed;
  * 'conv_two_pass', ghost clipping (`conv_two_pass_clipped_grad_sum`): a backward that computes only
    the norms, freeing each layer's a and δ as it passes, then the plain backward of Σ_i w_i L_i:
    ≈ 1.2× the non-private memory, for a second forward and backward (slower than 'conv').
Both equal `clipped_grad.clipped_grad_sum` (same flat clipping, same sensitivity C); models with active
dropout are refused, since the batched forward cannot give each example its own dropout key as the
vmap path does.
"""

import jax
import jax.numpy as jnp
import flax.linen as nn
from flax import traverse_util

from dpal_jax.dpsgd.clipped_grad import ApplyFn, clip_weights
from dpal_jax.dpsgd.losses import LossFn

_LINEAR = (nn.Conv, nn.Dense)


def _kind(context) -> str | None:
  """'linear', 'norm', 'dropout' or None for the intercepted method call."""
  if context.method_name != '__call__':
    return None
  module = context.module
  if isinstance(module, _LINEAR):
    return 'linear'
  if isinstance(module, nn.GroupNorm):
    return 'norm'
  if isinstance(module, nn.Dropout):
    return 'dropout'
  return None


def _dropout_active(module: nn.Dropout, args, kwargs) -> bool:
  deterministic = kwargs.get('deterministic', args[1] if len(args) > 1 else None)
  return module.rate > 0 and not nn.merge_param('deterministic', module.deterministic, deterministic)


def _conv_supported(module: nn.Module) -> bool:
  if isinstance(module, nn.Dense):
    return True
  padding_ok = not (isinstance(module.padding, str) and module.padding in ('CIRCULAR', 'CAUSAL'))
  return module.feature_group_count == 1 and padding_ok and not module.mask


def is_supported(apply_fn: ApplyFn, params, x_one: jnp.ndarray, key: jax.Array) -> bool:
  """True when every parameter belongs to a supported Conv/Dense/GroupNorm layer called exactly once
  and no dropout is active in training."""
  paths, ok = [], [True]

  def record(next_fun, args, kwargs, context):
    kind = _kind(context)
    if kind == 'dropout':
      ok[0] &= not _dropout_active(context.module, args, kwargs)
    elif kind == 'linear':
      ok[0] &= _conv_supported(context.module)
      paths.append(context.module.path)
    elif kind == 'norm':
      paths.append(context.module.path)
    return next_fun(*args, **kwargs)

  def forward(p):
    with nn.intercept_methods(record):
      return apply_fn(p, x_one, key)
  jax.eval_shape(forward, params)
  owned = {path + (name,) for path in paths for name in ('kernel', 'bias', 'scale')}
  leaves = set(traverse_util.flatten_dict(params))
  return ok[0] and len(paths) == len(set(paths)) and bool(leaves) and leaves <= owned


def _patches(module: nn.Module, a: jnp.ndarray) -> jnp.ndarray:
  """[B, P, K] rows whose product with the kernel reshaped to [K, C] is the layer's output."""
  batch = a.shape[0]
  if isinstance(module, nn.Dense):
    return a.reshape(batch, -1, a.shape[-1])
  spatial = len(module.kernel_size)
  a = a.reshape((-1,) + a.shape[-spatial - 1:])   # flax Conv folds extra leading axes into the batch
  padding = module.padding
  if not isinstance(padding, str):
    padding = nn.linear.canonicalize_padding(padding, spatial)
  patches = jax.lax.conv_general_dilated_patches(
      a, module.kernel_size, _tuple(module.strides, spatial), padding,
      lhs_dilation=_tuple(module.input_dilation, spatial),
      rhs_dilation=_tuple(module.kernel_dilation, spatial), dimension_numbers=_dims(spatial),
      precision=jax.lax.Precision.HIGHEST)
  # Feature axis is ordered (C_in, window positions); the kernel's rows are (window positions, C_in).
  window = 1
  for k in module.kernel_size:
    window *= k
  c_in = a.shape[-1]
  patches = patches.reshape(patches.shape[:-1] + (c_in, window))
  patches = jnp.swapaxes(patches, -1, -2)
  return patches.reshape(batch, -1, window * c_in)


def _tuple(value, n: int) -> tuple:
  if value is None:
    return (1,) * n
  return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def _dims(spatial: int) -> tuple:
  letters = 'DHW'[-spatial:]
  return ('N' + letters + 'C', letters + 'IO', 'N' + letters + 'C')


def _layers(apply_fn: ApplyFn, params, x: jnp.ndarray, key: jax.Array):
  """(modules, output shapes) of the Conv/Dense/GroupNorm calls of one forward, keyed by module path."""
  modules, out_shapes = {}, {}

  def record(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    if _kind(context) in ('linear', 'norm'):
      modules[context.module.path] = context.module
      out_shapes[context.module.path] = out.shape
    return out

  def forward(p):
    with nn.intercept_methods(record):
      return apply_fn(p, x, key)
  jax.eval_shape(forward, params)
  return modules, out_shapes


def _norm_perturbations(modules, out_shapes, batch: int) -> dict:
  """Per-example zero perturbations of every GroupNorm's scale and bias ([B, C] each)."""
  return {path: {name: jnp.zeros((batch, out_shapes[path][-1])) for name in ('scale', 'bias')}
          for path, module in modules.items() if isinstance(module, nn.GroupNorm)}


def _tapped_logits(apply_fn: ApplyFn, params, x: jnp.ndarray, key: jax.Array, on_linear, on_norm):
  """Logits of `apply_fn` with every Conv/Dense output z replaced by `on_linear(path, module, a, z)`
  (a: the layer's input) and every GroupNorm output y by `on_norm(path, module, x̂, y)` (x̂: its
  normalised input, before scale and bias)."""
  inside = [False]

  def tap(next_fun, args, kwargs, context):
    kind = _kind(context)
    if inside[0] or kind not in ('linear', 'norm'):
      return next_fun(*args, **kwargs)
    path = context.module.path
    out = next_fun(*args, **kwargs)
    if kind == 'linear':
      return on_linear(path, context.module, args[0], out)
    inside[0] = True   # the parameter-free GroupNorm below must not be tapped
    normalized = context.module.clone(parent=None, use_scale=False, use_bias=False).apply({}, args[0])
    inside[0] = False
    return on_norm(path, context.module, normalized, out)

  with nn.intercept_methods(tap):
    return apply_fn(params, x, key)


def _norm_squares(modules, params, norm_grads) -> jnp.ndarray:
  """[B] squared norms of the GroupNorms' per-example scale and bias gradients."""
  return sum(jnp.sum(g ** 2, axis=1) for path in norm_grads
             for name, g in norm_grads[path].items() if name in _node(params, path))


def conv_clipped_grad_sum(apply_fn: ApplyFn, loss_fn: LossFn, params, x: jnp.ndarray,
                          y: jnp.ndarray, mask: jnp.ndarray, keys: jax.Array, clip_norm: float):
  """Returns (Σ_i w_i g_i, per-example losses [B]), equal to `clipped_grad_sum` for the models
  `is_supported` accepts, by book-keeping (one backward pass; every layer's a and δ kept until the clip
  factors are known). Every example's forward uses `keys[0]` (no dropout is active, so unused)."""
  batch = x.shape[0]
  modules, out_shapes = _layers(apply_fn, params, x, keys[0])
  linear = [path for path, module in modules.items() if not isinstance(module, nn.GroupNorm)]

  def total_loss(perturbations):
    inputs = {}

    def on_linear(path, module, a, out):
      inputs[path] = a
      return out + perturbations[path]

    def on_norm(path, module, normalized, out):
      shape = (batch,) + (1,) * (out.ndim - 2) + (out.shape[-1],)
      delta = perturbations[path]
      return out + normalized * delta['scale'].reshape(shape) + delta['bias'].reshape(shape)
    logits = _tapped_logits(apply_fn, params, x, keys[0], on_linear, on_norm)
    per_example = loss_fn(logits, y)
    return jnp.sum(per_example), (per_example, inputs)

  zeros = _norm_perturbations(modules, out_shapes, batch)
  zeros.update({path: jnp.zeros(out_shapes[path]) for path in linear})
  # Only the convolutions' and matrix products' outputs are kept for the backward; the elementwise
  # layers between them (GroupNorm, Mish, pooling) are recomputed: ResNet9-GN bench DP peak 628 → 506 MB
  # (1.05× the non-private step), ≈ 6 % slower (docs/performance.md).
  total_loss = jax.checkpoint(total_loss, policy=jax.checkpoint_policies.dots_saveable)
  (_, (losses, inputs)), deltas = jax.value_and_grad(total_loss, has_aux=True)(zeros)

  squares = _norm_squares(modules, params, {p: deltas[p] for p in modules if p not in linear})
  for path in linear:
    squares += _linear_squares(modules[path], 'bias' in _node(params, path), inputs[path], deltas[path])
  weights = clip_weights(jnp.sqrt(squares), clip_norm, mask)

  flat = {}
  for path, module in modules.items():
    node = _node(params, path)
    if isinstance(module, nn.GroupNorm):
      for name, g in deltas[path].items():
        if name in node:
          flat[path + (name,)] = weights @ g
      continue
    weighted = deltas[path] * weights.reshape((batch,) + (1,) * (deltas[path].ndim - 1))
    flat[path + ('kernel',)] = _kernel_grad(module, node['kernel'], inputs[path], weighted)
    if 'bias' in node:
      flat[path + ('bias',)] = jnp.sum(weighted.reshape(-1, weighted.shape[-1]), axis=0)
  return traverse_util.unflatten_dict(flat), losses


def _norm_probe(module: nn.Module, has_bias: bool):
  """The identity on a layer's output z whose backward passes δ = ∂L/∂z through unchanged and returns,
  as the cotangent of a [B] probe, the per-example squared norms of the layer's kernel (and bias)
  gradient from its input a and δ. So the norms are computed as the backward reaches the layer, and
  a and δ can be freed right after (nothing else of them is kept)."""
  @jax.custom_vjp
  def probe(out, a, zeros):
    del a, zeros
    return out

  def forward(out, a, zeros):
    del zeros
    return out, a

  def backward(a, g):
    return g, jnp.zeros_like(a), _linear_squares(module, has_bias, a, g)

  probe.defvjp(forward, backward)
  return probe


def _affine_probe(has_scale: bool, has_bias: bool):
  """x̂·scale + bias (a GroupNorm's output from its normalised input) whose backward also returns, as
  the cotangent of a [B] probe, the per-example squared norms of the scale and bias gradients,
  Σ_c (Σ_p x̂_ipc δ_ipc)² and Σ_c (Σ_p δ_ipc)²; the scale and bias get no gradient."""
  @jax.custom_vjp
  def probe(normalized, scale, bias, zeros):
    del zeros
    return normalized * scale + bias

  def forward(normalized, scale, bias, zeros):
    del zeros
    return normalized * scale + bias, (normalized, scale)

  def backward(residuals, g):
    normalized, scale = residuals
    rows = lambda t: t.reshape(t.shape[0], -1, t.shape[-1])
    squares = jnp.zeros(g.shape[:1], g.dtype)
    if has_scale:
      squares += jnp.sum(jnp.sum(rows(normalized * g), axis=1) ** 2, axis=1)
    if has_bias:
      squares += jnp.sum(jnp.sum(rows(g), axis=1) ** 2, axis=1)
    return g * scale, jnp.zeros_like(scale), jnp.zeros_like(scale), squares

  probe.defvjp(forward, backward)
  return probe


def conv_two_pass_clipped_grad_sum(apply_fn: ApplyFn, loss_fn: LossFn, params, x: jnp.ndarray,
                                   y: jnp.ndarray, mask: jnp.ndarray, keys: jax.Array,
                                   clip_norm: float):
  """Returns (Σ_i w_i g_i, per-example losses [B]), equal to `conv_clipped_grad_sum`, in about the
  memory of the non-private step, for a second forward and backward pass (ghost clipping).

  Pass 1, a forward and a backward that computes no parameter gradient, gives the per-example norms
  layer by layer as the backward reaches each layer (`_norm_probe`, `_affine_probe`), so no layer's a
  and δ outlive its own backward step. Pass 2 is the plain backward of Σ_i w_i L_i with the clip
  factors w_i of pass 1 held constant: its parameter gradient is Σ_i w_i g_i, since every layer acts
  on each example separately. Pass 2's input is x + 0·Σ_i w_i (the same values; a data dependency,
  since XLA:CPU drops optimisation barriers), so XLA can neither start pass 2 before the factors are
  known nor share pass 1's forward, either of which would keep both passes' activations alive at once.
  The peak is then about pass 1's, with XLA:CPU's memory-minimising scheduler (`dpal_jax/__init__.py`,
  docs/performance.md).
  """
  batch = x.shape[0]
  modules, _ = _layers(apply_fn, params, x, keys[0])
  probes = {}
  for path, module in modules.items():
    node = _node(params, path)
    probes[path] = (_affine_probe('scale' in node, 'bias' in node)
                    if isinstance(module, nn.GroupNorm) else _norm_probe(module, 'bias' in node))

  def norm_pass(zeros):
    def on_linear(path, module, a, out):
      return probes[path](out, jax.lax.stop_gradient(a), zeros[path])

    def on_norm(path, module, normalized, out):
      node = _node(params, path)
      ones = jnp.ones(out.shape[-1:], out.dtype)
      return probes[path](normalized, node.get('scale', ones), node.get('bias', 0 * ones), zeros[path])
    per_example = loss_fn(_tapped_logits(apply_fn, params, x, keys[0], on_linear, on_norm), y)
    return jnp.sum(per_example), per_example

  (_, losses), squares = jax.value_and_grad(norm_pass, has_aux=True)(
      {path: jnp.zeros((batch,)) for path in modules})
  weights = clip_weights(jnp.sqrt(sum(squares.values())), clip_norm, mask)

  after = x + 0.0 * jnp.sum(weights)   # pass 2's input, computed only once the factors are known
  weighted = lambda p: jnp.sum(weights * loss_fn(apply_fn(p, after, keys[0]), y))
  return jax.grad(weighted)(params), losses


def _linear_squares(module: nn.Module, has_bias: bool, a: jnp.ndarray, g: jnp.ndarray) -> jnp.ndarray:
  """[B] squared norms of a Conv/Dense layer's per-example kernel and bias gradients from its input a
  and output gradient g."""
  d = g.reshape(g.shape[0], -1, g.shape[-1])
  squares = _kernel_squares(module, a, d)
  if has_bias:
    squares += jnp.sum(jnp.sum(d, axis=1) ** 2, axis=1)
  return squares


def _kernel_squares(module: nn.Module, a: jnp.ndarray, d: jnp.ndarray) -> jnp.ndarray:
  """[B] squared norms ‖A_iᵀ δ_i‖² of the per-example kernel gradients of one layer (d: [B, P, C]).

  Computed over blocks of examples (`_block_size`), so only one block's patches and Gram matrices or
  per-example gradients are alive at once; the cheaper of the ghost norm and the per-example gradient
  (by flops) is taken per layer.
  """
  batch, positions, c = d.shape
  k = _patches(module, a[:1]).shape[-1]
  ghost = positions * (k + c) < k * c
  per_example = positions * k + (2 * positions * positions + positions * c if ghost else k * c)

  def block(args):
    a_b, d_b = args
    patches = _patches(module, a_b)
    if ghost:
      return jnp.einsum('bpq,bpq->b', jnp.einsum('bpk,bqk->bpq', patches, patches),
                        jnp.einsum('bpc,bqc->bpq', d_b, d_b))
    return jnp.sum(jnp.einsum('bpk,bpc->bkc', patches, d_b) ** 2, axis=(1, 2))

  recorded = a[0].size + d[0].size
  size = _block_size(batch, recorded, per_example)
  if size == batch:
    return block((a, d))
  blocks = lambda t: t.reshape((batch // size, size) + t.shape[1:])
  return jax.lax.map(block, (blocks(a), blocks(d))).reshape(batch)


def _block_size(batch: int, recorded: int, transient: int) -> int:
  """The largest divisor of `batch` whose block intermediates (`transient` floats per example) take no
  more memory than the layer's recorded input and output gradient (`recorded` floats per example) of
  the whole batch, which are alive anyway."""
  target = max(1, batch * recorded // max(transient, 1))
  return max(s for s in range(1, min(batch, target) + 1) if batch % s == 0)


def _kernel_grad(module: nn.Module, kernel: jnp.ndarray, a: jnp.ndarray,
                 weighted: jnp.ndarray) -> jnp.ndarray:
  """Σ_i w_i A_iᵀ δ_i in the kernel's shape: the layer's own weight-gradient contraction (for a conv,
  XLA's backprop-filter convolution, no patches) applied to the recorded input and w-weighted output
  gradient."""
  if isinstance(module, nn.Dense):
    a2 = a.reshape(-1, a.shape[-1])
    return a2.T @ weighted.reshape(-1, weighted.shape[-1])
  linear = module.clone(parent=None, use_bias=False, precision=jax.lax.Precision.HIGHEST)
  _, pullback = jax.vjp(lambda k: linear.apply({'params': {'kernel': k}}, a), kernel)
  return pullback(weighted)[0]


def _node(params, path: tuple):
  """The layer's parameters ({} for a GroupNorm without scale and bias)."""
  for name in path:
    params = params.get(name, {})
  return params
