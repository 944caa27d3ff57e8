"""SmallCNN: a GroupNorm conv net for small grey images (28×28×1, 8×8×1) that trains fast on CPU.

conv3×3(32) → GN → ReLU → max-pool 2 → conv3×3(64) → GN → ReLU → global mean → Dense(128)+ReLU
(the features) → dropout → Dense 'head'. GroupNorm, not BatchNorm: DP-SGD needs per-example
independence in the forward pass.
"""

import flax.linen as nn
import jax.numpy as jnp


class SmallCNN(nn.Module):
  num_classes: int
  dropout: float = 0.0
  width: int = 32
  features: int = 128

  def setup(self):
    self.conv1 = nn.Conv(self.width, (3, 3), use_bias=False)
    self.norm1 = nn.GroupNorm(num_groups=min(8, self.width))
    self.conv2 = nn.Conv(2 * self.width, (3, 3), use_bias=False)
    self.norm2 = nn.GroupNorm(num_groups=min(8, 2 * self.width))
    self.dense = nn.Dense(self.features)
    self.drop = nn.Dropout(self.dropout)
    self.head = nn.Dense(self.num_classes)

  def embed(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    """Penultimate features (`features`-dimensional)."""
    x = nn.relu(self.norm1(self.conv1(x)))
    x = nn.max_pool(x, (2, 2), strides=(2, 2))
    x = nn.relu(self.norm2(self.conv2(x)))
    x = jnp.mean(x, axis=(1, 2))
    return nn.relu(self.dense(x))

  def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    return self.head(self.drop(self.embed(x, train), deterministic=not train))
