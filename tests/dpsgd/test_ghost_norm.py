import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dpal_jax.dpsgd import clipped_grad, ghost_norm, losses
from dpal_jax.models.cnn import SmallCNN
from dpal_jax.models.mlp import MLP

LOSS = losses.per_example_loss('multiclass')


class SequenceModel(nn.Module):
  """Dense layers applied to every position of a [T, d] row: exercises the Gram-matrix norm."""
  num_classes: int = 3

  @nn.compact
  def __call__(self, x, train=False):
    h = nn.relu(nn.Dense(6)(x))
    return nn.Dense(self.num_classes, name='head')(h.mean(axis=1))


class SharedDense(nn.Module):
  @nn.compact
  def __call__(self, x, train=False):
    layer = nn.Dense(x.shape[-1])
    return nn.Dense(3, name='head')(layer(layer(x)))


def make_apply(model):
  return lambda p, x, k: model.apply({'params': p}, x, train=True, rngs={'dropout': k})


def both_paths(model, x, y, mask, clip_norm):
  params = model.init(jax.random.key(0), x[:1])['params']
  keys = jax.random.split(jax.random.key(1), len(x))
  args = (make_apply(model), LOSS, params, x, y, mask, keys, clip_norm)
  ghost = jax.jit(ghost_norm.ghost_clipped_grad_sum, static_argnums=(0, 1))(*args)
  vmap = jax.jit(clipped_grad.clipped_grad_sum, static_argnums=(0, 1))(*args)
  return ghost, vmap


@pytest.mark.parametrize('model, shape', [
    (MLP(num_classes=3, hidden=(16, 8), dropout=0.5), (7, 4, 4, 1)),
    (SequenceModel(), (7, 5, 4)),
])
@pytest.mark.parametrize('clip_norm', [0.1, math.inf])
def test_ghost_path_equals_the_vmap_path(model, shape, clip_norm):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=shape).astype(np.float32) * np.linspace(0.1, 10, shape[0]).reshape(
      (-1,) + (1,) * (len(shape) - 1)))
  y = jnp.asarray(rng.integers(0, 3, shape[0]))
  mask = jnp.array([True, True, False, True, True, True, False])
  (ghost, ghost_losses), (vmap, vmap_losses) = both_paths(model, x, y, mask, clip_norm)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), ghost, vmap)
  np.testing.assert_allclose(ghost_losses, vmap_losses, rtol=1e-6)


@pytest.mark.parametrize('model, shape, expected', [
    (MLP(num_classes=3), (1, 4, 4, 1), True),
    (SequenceModel(), (1, 5, 4), True),
    (SmallCNN(num_classes=3, width=4, features=8), (1, 8, 8, 1), False),
    (SharedDense(), (1, 4), False),
])
def test_dense_only_models_are_recognised(model, shape, expected):
  x = jnp.ones(shape)
  params = model.init(jax.random.key(0), x)['params']
  assert ghost_norm.is_dense_only(make_apply(model), params, x, jax.random.key(1)) is expected
