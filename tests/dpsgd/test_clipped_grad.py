import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dpal_jax.dpsgd import clipped_grad, losses
from dpal_jax.models.cnn import SmallCNN
from dpal_jax.models.mlp import MLP

MODEL = SmallCNN(num_classes=3, width=4, features=8)
LOSS = losses.per_example_loss('multiclass')


def apply_fn(params, x, key):
  return MODEL.apply({'params': params}, x, train=True, rngs={'dropout': key})


@pytest.fixture(scope='module')
def setup():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(6, 8, 8, 1)).astype(np.float32)
  x[2] *= 50.0  # a large-gradient example
  y = rng.integers(0, 3, 6)
  params = MODEL.init(jax.random.key(0), x[:1])['params']
  keys = jax.random.split(jax.random.key(1), 6)
  return params, jnp.asarray(x), jnp.asarray(y), keys


@jax.jit
def single_grad(params, x_one, y_one):
  return jax.grad(lambda p: LOSS(MODEL.apply({'params': p}, x_one), y_one)[0])(params)


def naive_clipped_sum(params, x, y, mask, clip_norm):
  """A Python loop over examples: gradient of a batch of one, clip, add."""
  total = jax.tree.map(jnp.zeros_like, params)
  for i in np.flatnonzero(mask):
    g = single_grad(params, x[i:i + 1], y[i:i + 1])
    norm = math.sqrt(sum(float(jnp.sum(leaf ** 2)) for leaf in jax.tree.leaves(g)))
    factor = min(1.0, clip_norm / (norm + 1e-6))
    total = jax.tree.map(lambda t, leaf: t + factor * leaf, total, g)
  return total


jitted_sum = jax.jit(clipped_grad.clipped_grad_sum, static_argnums=(0, 1))
MASK = jnp.array([True, True, True, False, True, False])


def assert_trees_close(a, b, rtol=1e-5, atol=1e-6):
  jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, rtol=rtol, atol=atol), a, b)


@pytest.mark.parametrize('clip_norm', [0.05, 1.0, math.inf])
def test_equals_a_naive_per_example_loop(setup, clip_norm):
  params, x, y, keys = setup
  total, per_example = jitted_sum(apply_fn, LOSS, params, x, y, MASK, keys, clip_norm)
  assert_trees_close(total, naive_clipped_sum(params, x, y, np.asarray(MASK), clip_norm))
  assert per_example.shape == (6,)


def test_jit_equals_eager(setup):
  _, x, y, keys = setup
  mlp = MLP(num_classes=3, hidden=(5,))
  params = mlp.init(jax.random.key(0), x[:1])['params']
  apply = lambda p, xb, k: mlp.apply({'params': p}, xb)
  args = (apply, LOSS, params, x, y, MASK, keys, 0.05)
  assert_trees_close(jitted_sum(*args)[0], clipped_grad.clipped_grad_sum(*args)[0])


def test_padded_rows_contribute_exactly_zero(setup):
  params, x, y, keys = setup
  total, _ = jitted_sum(apply_fn, LOSS, params, x, y, jnp.zeros(6, bool), keys, 1.0)
  assert all(np.all(np.asarray(leaf) == 0) for leaf in jax.tree.leaves(total))


@pytest.mark.parametrize('scale', [1.0, 1e3, 1e6])
def test_one_example_changes_the_sum_by_at_most_the_clip_norm(setup, scale):
  params, x, y, keys = setup
  x = x.at[4].multiply(scale)
  clip_norm = 0.5
  with_it = jnp.ones(6, bool)
  without = with_it.at[4].set(False)
  a, _ = jitted_sum(apply_fn, LOSS, params, x, y, with_it, keys, clip_norm)
  b, _ = jitted_sum(apply_fn, LOSS, params, x, y, without, keys, clip_norm)
  diff = math.sqrt(sum(float(jnp.sum((u - v) ** 2)) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b))))
  assert diff <= clip_norm * (1 + 1e-5)


def test_clip_weights_are_one_below_the_bound_and_scale_above_it():
  norms = jnp.array([0.5, 2.0, 4.0, 4.0])
  weights = clipped_grad.clip_weights(norms, 2.0, jnp.array([True, True, True, False]))
  np.testing.assert_allclose(weights, [1.0, 2.0 / (2.0 + 1e-6), 2.0 / (4.0 + 1e-6), 0.0])


def test_each_example_gets_its_own_dropout_key():
  model = SmallCNN(num_classes=3, width=4, features=8, dropout=0.5)
  x = jnp.ones((3, 8, 8, 1))
  params = model.init(jax.random.key(0), x[:1])['params']
  apply = lambda p, xb, k: model.apply({'params': p}, xb, train=True, rngs={'dropout': k})
  grads_fn = jax.jit(clipped_grad.per_example_grads, static_argnums=(0, 1))
  _, grads = grads_fn(apply, LOSS, params, x, jnp.zeros(3, jnp.int32), jax.random.split(jax.random.key(1), 3))
  head = np.asarray(grads['head']['kernel'])
  assert not np.allclose(head[0], head[1])
