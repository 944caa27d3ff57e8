"""MLP classifier: flatten → Dense+ReLU per hidden layer (dropout after each) → Dense 'head'.

Made only of Dense layers, so the DP-SGD engine's dense fast path (ghost norms) applies to it.
"""

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


class MLP(nn.Module):
  """`hidden` sizes default to two layers of 512 (configs/bench/mlp.py).

  `torch_init_fan_in`: the input dimension, to initialise as PyTorch's nn.Linear does (kernel and bias
  uniform in ±1/√fan_in); None (the default): Flax's (LeCun normal kernels, zero biases). On low-dimensional
  inputs far from the origin (Four Moons) zero biases leave every first-layer ReLU boundary through the
  origin, which an MLP trained with Adam 1e-3 for 100 epochs does not undo.
  """
  num_classes: int
  dropout: float = 0.0
  hidden: Sequence[int] = (512, 512)
  torch_init_fan_in: int | None = None

  def setup(self):
    fans = [self.torch_init_fan_in, *self.hidden]
    self.layers = [self._dense(width, fans[i], f'dense_{i}') for i, width in enumerate(self.hidden)]
    self.drop = nn.Dropout(self.dropout)
    self.head = self._dense(self.num_classes, fans[-1], None)

  def _dense(self, width: int, fan_in: int, name: str | None) -> nn.Dense:
    if self.torch_init_fan_in is None:
      return nn.Dense(width, name=name)
    bound = fan_in ** -0.5
    uniform = lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -bound, bound)
    return nn.Dense(width, name=name, kernel_init=uniform, bias_init=uniform)

  def embed(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    """Penultimate features: the last hidden layer's activations."""
    x = x.reshape((x.shape[0], -1))
    for layer in self.layers:
      x = self.drop(nn.relu(layer(x)), deterministic=not train)
    return x

  def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    return self.head(self.embed(x, train))


def mlp_128x2(num_classes: int, dropout: float = 0.0) -> MLP:
  """The LHD paper's Four Moons network (configs/lhd_moons.py): 2-D inputs, two hidden layers of 128,
  PyTorch's initialisation (its code is PyTorch)."""
  return MLP(num_classes=num_classes, dropout=dropout, hidden=(128, 128), torch_init_fan_in=2)
