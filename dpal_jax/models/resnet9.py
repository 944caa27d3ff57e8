"""ResNet9 with GroupNorm and Mish, exactly the DPAL model (docs/original_dpal.md §e).

Block = conv3×3 (no bias) → GroupNorm(min(32, C)) → Mish [→ max-pool 2×2]:
conv1 64 → conv2 128 + pool → res1 (two 128 blocks) + skip → GroupNorm → conv3 256 + pool →
conv4 256 + pool → res2 (two 256 blocks) + skip → GroupNorm → adaptive max-pool to 2×2 → flatten
(channel-major, as PyTorch) → Dense 'head'. Dropout follows conv1..conv4 when `dropout > 0` and
`train=True`. Initialisation is PyTorch's default (kaiming-uniform a=√5 ⇒ U(±1/√fan_in) for conv and
linear weights and the linear bias; GroupNorm scale 1, bias 0), so training starts where the original's did.
2,448,714 parameters for 32×32×3 inputs and 10 classes.
"""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

_torch_weight_init = nn.initializers.variance_scaling(1 / 3, 'fan_in', 'uniform')


def _torch_bias_init(fan_in: int):
  bound = 1 / math.sqrt(fan_in)
  return lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)


def _group_norm(channels: int) -> nn.GroupNorm:
  return nn.GroupNorm(num_groups=min(32, channels), epsilon=1e-5)


class ConvBlock(nn.Module):
  channels: int
  pool: bool = False

  @nn.compact
  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    x = nn.Conv(self.channels, (3, 3), padding=1, use_bias=False, kernel_init=_torch_weight_init)(x)
    x = jax.nn.mish(_group_norm(self.channels)(x))
    return nn.max_pool(x, (2, 2), strides=(2, 2)) if self.pool else x


def adaptive_max_pool(x: jnp.ndarray, size: int) -> jnp.ndarray:
  """PyTorch's AdaptiveMaxPool2d: cell i spans [floor(i·H/size), ceil((i+1)·H/size))."""
  def cells(length):
    return [(i * length // size, -(-(i + 1) * length // size)) for i in range(size)]
  rows = [
      jnp.stack([x[:, r0:r1, c0:c1].max(axis=(1, 2)) for c0, c1 in cells(x.shape[2])], axis=1)
      for r0, r1 in cells(x.shape[1])]
  return jnp.stack(rows, axis=1)


class ResNet9(nn.Module):
  num_classes: int
  dropout: float = 0.0

  def setup(self):
    self.conv1 = ConvBlock(64)
    self.conv2 = ConvBlock(128, pool=True)
    self.res1 = [ConvBlock(128), ConvBlock(128)]
    self.scale_norm_1 = _group_norm(128)
    self.conv3 = ConvBlock(256, pool=True)
    self.conv4 = ConvBlock(256, pool=True)
    self.res2 = [ConvBlock(256), ConvBlock(256)]
    self.scale_norm_2 = _group_norm(256)
    self.drop = nn.Dropout(self.dropout)
    self.head = nn.Dense(self.num_classes, kernel_init=_torch_weight_init,
                         bias_init=_torch_bias_init(4 * 256))

  def embed(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    """The 1024 features fed to the head (256 channels × 2 × 2, channel-major)."""
    drop = lambda h: self.drop(h, deterministic=not train)
    x = drop(self.conv1(x))
    x = drop(self.conv2(x))
    x = self.scale_norm_1(self.res1[1](self.res1[0](x)) + x)
    x = drop(self.conv3(x))
    x = drop(self.conv4(x))
    x = self.scale_norm_2(self.res2[1](self.res2[0](x)) + x)
    x = adaptive_max_pool(x, 2)
    return jnp.transpose(x, (0, 3, 1, 2)).reshape((x.shape[0], -1))

  def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    return self.head(self.embed(x, train))
