"""Small models and a pool for the al tests: the real MLP (tiny widths), and one model lacking `dropout`."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dpal_jax.models.mlp import MLP


class NoDropoutMLP(nn.Module):
  """A contract model without a `dropout` attribute: BALD cannot run MC dropout on it."""
  num_classes: int = 4

  @nn.compact
  def __call__(self, x, train=False):
    return nn.Dense(self.num_classes, name='head')(x)


@pytest.fixture(scope='session')
def pool():
  """(unlabeled, labeled) inputs: 2-D features of 4 image-like channels."""
  rng = np.random.default_rng(0)
  return (rng.normal(size=(150, 3, 2)).astype(np.float32), rng.normal(size=(40, 3, 2)).astype(np.float32))


@pytest.fixture(scope='session')
def tiny(pool):
  model = MLP(num_classes=4, hidden=(16,))
  return model, model.init(jax.random.key(0), jnp.asarray(pool[0][:1]))['params']


@pytest.fixture(scope='session')
def tiny_multilabel(pool):
  model = MLP(num_classes=7, hidden=(16,))
  return model, model.init(jax.random.key(1), jnp.asarray(pool[0][:1]))['params']


@pytest.fixture(scope='session')
def no_dropout(pool):
  model = NoDropoutMLP()
  return model, model.init(jax.random.key(2), jnp.asarray(pool[0][:1].reshape(1, -1)))['params']
