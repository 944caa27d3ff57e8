"""Normalizer-Free Networks (NFNet-F*) in Flax linen, following DeepMind's Haiku `nfnets/nfnet.py`.

Module and parameter names mirror the official Haiku tree (`stem_conv0`, `nf_block`, `nf_block_1`, …,
`conv1b`, `squeeze_excite/linear_1`, `skip_gain`, `final_conv`), so loading the official weights is a
rename of `w`→`kernel`, `b`→`bias` and of the classifier `linear`→`head`, with no transposes (both use
HWIO conv kernels and (in, out) dense kernels). There is no batch state: every block is per-example,
which is what DP-SGD's per-example gradients need.
"""

import dataclasses
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

GELU_GAMMA = 1.7015043497085571  # makes γ·gelu(x) variance-preserving for x ~ N(0, 1)


@dataclasses.dataclass(frozen=True)
class Variant:
  """One row of the official variant table (`base.nfnet_params`)."""
  widths: tuple[int, ...]
  depths: tuple[int, ...]
  train_imsize: int
  test_imsize: int
  drop_rate: float


VARIANTS = {
    'F0': Variant((256, 512, 1536, 1536), (1, 2, 6, 3), 192, 256, 0.2),
    'F1': Variant((256, 512, 1536, 1536), (2, 4, 12, 6), 224, 320, 0.3),
    'F2': Variant((256, 512, 1536, 1536), (3, 6, 18, 9), 256, 352, 0.4),
    'F3': Variant((256, 512, 1536, 1536), (4, 8, 24, 12), 320, 416, 0.4),
}


def scaled_gelu(x: jax.Array) -> jax.Array:
  """γ·GELU with the tanh approximation, as the official code (`jax.nn.gelu` default)."""
  return jax.nn.gelu(x, approximate=True) * GELU_GAMMA


class WSConv(nn.Module):
  """Conv2D with scaled weight standardisation: Ŵ = (W − μ)·gain / sqrt(max(σ²·fan_in, 1e-4)).

  μ, σ² (population variance) are per output channel over (h, w, in/groups) of the HWIO kernel.
  """
  features: int
  kernel_size: int = 1
  stride: int = 1
  groups: int = 1
  eps: float = 1e-4

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    shape = (self.kernel_size, self.kernel_size, x.shape[-1] // self.groups, self.features)
    w = self.param('kernel', nn.initializers.variance_scaling(1.0, 'fan_in', 'truncated_normal'),
                   shape)
    gain = self.param('gain', nn.initializers.ones, (self.features,))
    bias = self.param('bias', nn.initializers.zeros, (self.features,))
    mean = jnp.mean(w, axis=(0, 1, 2), keepdims=True)
    var = jnp.var(w, axis=(0, 1, 2), keepdims=True)
    fan_in = np.prod(shape[:-1])
    scale = jax.lax.rsqrt(jnp.maximum(var * fan_in, self.eps)) * gain
    w = w * scale - mean * scale
    out = jax.lax.conv_general_dilated(
        x, w, window_strides=(self.stride, self.stride), padding='SAME',
        dimension_numbers=('NHWC', 'HWIO', 'NHWC'), feature_group_count=self.groups)
    return out + bias


class SqueezeExcite(nn.Module):
  """Channel gates sigmoid(W1·relu(W0·mean_hw(x))); the ReLU is unscaled, as the official code."""
  features: int
  ratio: float = 0.5

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    h = jnp.mean(x, axis=(1, 2))
    h = nn.Dense(max(1, int(self.features * self.ratio)), name='linear')(h)
    h = nn.Dense(self.features, name='linear_1')(jax.nn.relu(h))
    return jax.nn.sigmoid(h)[:, None, None, :]


class NFBlock(nn.Module):
  """Bottleneck residual block: shortcut + α·skip_gain·stochdepth(2·SE(f(β·act(x)))·f(β·act(x)))."""
  out_ch: int
  stride: int = 1
  beta: float = 1.0
  alpha: float = 0.2
  expansion: float = 0.5
  group_width: int = 128
  se_ratio: float = 0.5
  stochdepth_rate: float = 0.0

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    in_ch = x.shape[-1]
    groups = int(self.out_ch * self.expansion) // self.group_width
    width = groups * self.group_width
    projection = self.stride > 1 or in_ch != self.out_ch
    out = scaled_gelu(x) * self.beta
    if self.stride > 1:
      # 'SAME' average pooling that divides by the valid elements only, as Haiku's avg_pool.
      shortcut = nn.avg_pool(out, (2, 2), strides=(2, 2), padding='SAME', count_include_pad=False)
      shortcut = WSConv(self.out_ch, name='conv_shortcut')(shortcut)
    elif projection:
      shortcut = WSConv(self.out_ch, name='conv_shortcut')(out)
    else:
      shortcut = x
    out = WSConv(width, name='conv0')(out)
    out = WSConv(width, 3, self.stride, groups, name='conv1')(scaled_gelu(out))
    out = WSConv(width, 3, 1, groups, name='conv1b')(scaled_gelu(out))
    out = WSConv(self.out_ch, name='conv2')(scaled_gelu(out))
    out = 2.0 * SqueezeExcite(self.out_ch, self.se_ratio, name='squeeze_excite')(out) * out
    if train and self.stochdepth_rate > 0.0:
      # One Bernoulli(keep) per example, no rescaling. The key comes from the 'dropout' stream, so a
      # per-example vmap with per-example keys gives each example its own draw.
      u = jax.random.uniform(self.make_rng('dropout'), (out.shape[0], 1, 1, 1), out.dtype)
      out = out * jnp.floor(1.0 - self.stochdepth_rate + u)
    skip_gain = self.param('skip_gain', nn.initializers.zeros, ())
    return out * skip_gain * self.alpha + shortcut


class NFNet(nn.Module):
  """NFNet classifier; `variant` picks depths and widths, `width_multiplier`/`group_width` shrink it.

  `dropout=None` uses the variant's own rate (F0: 0.2). `stochdepth_rate` is the rate of the last
  block; block i drops with rate · i / num_blocks (official class default 0.1).
  """
  num_classes: int
  variant: str = 'F0'
  dropout: float | None = None
  stochdepth_rate: float = 0.1
  alpha: float = 0.2
  se_ratio: float = 0.5
  width_multiplier: float = 1.0
  group_width: int = 128
  stem_widths: Sequence[int] = (16, 32, 64)
  depths: Sequence[int] | None = None

  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Logits [batch, num_classes] for NHWC float32 images."""
    return self._forward(x, train, with_head=True)

  def embed(self, x: jax.Array, train: bool = False) -> jax.Array:
    """Penultimate features: the pooled final-conv activations [batch, 2·last width]."""
    return self._forward(x, train, with_head=False)

  @nn.compact
  def _forward(self, x: jax.Array, train: bool, with_head: bool) -> jax.Array:
    spec = VARIANTS[self.variant]
    widths = [int(w * self.width_multiplier) for w in spec.widths]
    depths = spec.depths if self.depths is None else tuple(self.depths)
    out = x
    for i, (ch, stride) in enumerate(zip((*self.stem_widths, widths[0] // 2), (2, 1, 1, 2))):
      if i:
        out = scaled_gelu(out)
      out = WSConv(ch, 3, stride, name=f'stem_conv{i}')(out)
    num_blocks, index, expected_std = sum(depths), 0, 1.0
    for width, depth, stage_stride in zip(widths, depths, (1, 2, 2, 2)):
      for block_index in range(depth):
        out = NFBlock(
            width, stage_stride if block_index == 0 else 1, beta=1.0 / expected_std,
            alpha=self.alpha, group_width=self.group_width, se_ratio=self.se_ratio,
            stochdepth_rate=self.stochdepth_rate * index / num_blocks,
            name='nf_block' if index == 0 else f'nf_block_{index}')(out, train)
        index += 1
        if block_index == 0:
          expected_std = 1.0  # reset after each stage's first (transition) block
        expected_std = (expected_std**2 + self.alpha**2)**0.5
    out = scaled_gelu(WSConv(2 * widths[-1], name='final_conv')(out))
    features = jnp.mean(out, axis=(1, 2))
    if not with_head:
      return features
    rate = spec.drop_rate if self.dropout is None else self.dropout
    features = nn.Dropout(rate, deterministic=not train or rate == 0.0)(features)
    return nn.Dense(self.num_classes, kernel_init=nn.initializers.normal(0.01), name='head')(features)
