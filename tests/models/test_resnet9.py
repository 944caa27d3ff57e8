import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dpal_jax import models
from dpal_jax.models.resnet9 import ResNet9, adaptive_max_pool


def param_shapes(model, shape):
  variables = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros(shape))
  return jax.tree.map(lambda a: a.shape, variables['params'])


def test_parameter_count_is_the_dpal_models():
  shapes = param_shapes(models.get('resnet9_gn', num_classes=10), (1, 32, 32, 3))
  assert sum(math.prod(s) for s in jax.tree.leaves(shapes, is_leaf=lambda x: isinstance(x, tuple))) == 2_448_714
  assert shapes['head']['kernel'] == (1024, 10)
  assert shapes['conv1']['Conv_0']['kernel'] == (3, 3, 3, 64)
  assert 'bias' not in shapes['conv1']['Conv_0']
  assert shapes['scale_norm_2']['scale'] == (256,)


def test_one_channel_128_pixel_inputs_keep_the_same_head():
  shapes = param_shapes(ResNet9(num_classes=4), (1, 128, 128, 1))
  assert shapes['head']['kernel'] == (1024, 4)


@pytest.fixture(scope='module')
def initialised():
  model = ResNet9(num_classes=10, dropout=0.5)
  x = jax.random.normal(jax.random.key(1), (2, 32, 32, 3))
  return model, model.init(jax.random.key(0), x), x


def test_forward_embed_and_pytorch_default_init(initialised):
  model, variables, x = initialised
  logits = model.apply(variables, x)
  features = model.apply(variables, x, method='embed')
  assert logits.shape == (2, 10) and features.shape == (2, 1024)
  np.testing.assert_allclose(features @ variables['params']['head']['kernel']
                             + variables['params']['head']['bias'], logits, rtol=1e-5, atol=1e-5)
  kernel = variables['params']['conv2']['Conv_0']['kernel']
  bound = 1 / math.sqrt(3 * 3 * 64)
  assert np.abs(kernel).max() <= bound and np.abs(kernel).max() > 0.9 * bound
  assert np.all(variables['params']['conv1']['GroupNorm_0']['scale'] == 1)


def test_dropout_only_in_training_mode(initialised):
  model, variables, x = initialised
  np.testing.assert_array_equal(model.apply(variables, x), model.apply(variables, x))
  a = model.apply(variables, x, train=True, rngs={'dropout': jax.random.key(0)})
  b = model.apply(variables, x, train=True, rngs={'dropout': jax.random.key(1)})
  assert not np.allclose(a, b)


@pytest.mark.parametrize('size', [4, 5, 7])
def test_adaptive_max_pool_matches_pytorch_cells(size):
  x = jnp.asarray(np.random.default_rng(size).normal(size=(1, size, size, 2)))
  pooled = adaptive_max_pool(x, 2)
  for i in range(2):
    for j in range(2):
      r = slice(i * size // 2, math.ceil((i + 1) * size / 2))
      c = slice(j * size // 2, math.ceil((j + 1) * size / 2))
      np.testing.assert_array_equal(pooled[0, i, j], x[0, r, c].max(axis=(0, 1)))
