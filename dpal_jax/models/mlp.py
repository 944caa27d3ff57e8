"""MLP classifier: flatten → Dense+ReLU per hidden layer (dropout after each) → Dense 'head'.

Made only of Dense layers, so the DP-SGD engine's dense fast path (ghost norms) applies to it.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax.numpy as jnp


class MLP(nn.Module):
  """`hidden` sizes default to two layers of 512 (configs/bench/mlp.py)."""
  num_classes: int
  dropout: float = 0.0
  hidden: Sequence[int] = (512, 512)

  def setup(self):
    self.layers = [nn.Dense(width, name=f'dense_{i}') for i, width in enumerate(self.hidden)]
    self.drop = nn.Dropout(self.dropout)
    self.head = nn.Dense(self.num_classes)

  def embed(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    """Penultimate features: the last hidden layer's activations."""
    x = x.reshape((x.shape[0], -1))
    for layer in self.layers:
      x = self.drop(nn.relu(layer(x)), deterministic=not train)
    return x

  def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    return self.head(self.embed(x, train))


def mlp_128x2(num_classes: int, dropout: float = 0.0) -> MLP:
  """Two hidden layers of 128: the LHD paper's Four Moons network (configs/lhd_moons.py)."""
  return MLP(num_classes=num_classes, dropout=dropout, hidden=(128, 128))
