"""A tiny Flax classifier that follows the model contract (docs/architecture.md), for the al tests."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest


class TinyMLP(nn.Module):
  """Logits from `__call__`, features from `embed`, last Dense 'head', dropout only when train=True."""
  num_classes: int = 4
  dropout: float = 0.0

  def setup(self):
    self.hidden = nn.Dense(16)
    self.drop = nn.Dropout(self.dropout)
    self.head = nn.Dense(self.num_classes)

  def embed(self, x, train=False):
    h = nn.relu(self.hidden(x.reshape(x.shape[0], -1)))
    return self.drop(h, deterministic=not train)

  def __call__(self, x, train=False):
    return self.head(self.embed(x, train))


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
  model = TinyMLP()
  return model, model.init(jax.random.key(0), jnp.asarray(pool[0][:1]))['params']


@pytest.fixture(scope='session')
def tiny_multilabel(pool):
  model = TinyMLP(num_classes=7)
  return model, model.init(jax.random.key(1), jnp.asarray(pool[0][:1]))['params']


@pytest.fixture(scope='session')
def no_dropout(pool):
  model = NoDropoutMLP()
  return model, model.init(jax.random.key(2), jnp.asarray(pool[0][:1].reshape(1, -1)))['params']
