import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dpal_jax.dpsgd import clipped_grad, conv_norms, losses
from dpal_jax.models.cnn import SmallCNN
from dpal_jax.models.resnet9 import ConvBlock, ResNet9

LOSS = losses.per_example_loss('multiclass')


class TinyResNet(nn.Module):
  """ResNet9's structure at tiny widths, plus the conv options the path must honour: a biased strided
  VALID conv, a dilated conv, and late layers small enough (2×2) to take the ghost-norm branch."""
  num_classes: int = 3
  dropout: float = 0.0

  @nn.compact
  def __call__(self, x, train=False):
    x = ConvBlock(4)(x)
    x = ConvBlock(6, pool=True)(x)
    x = nn.GroupNorm(num_groups=2)(ConvBlock(6)(x) + x)
    x = nn.Conv(8, (3, 3), padding='SAME', kernel_dilation=2)(x)
    x = nn.Dropout(self.dropout, deterministic=not train)(jax.nn.mish(x))
    x = nn.Conv(8, (2, 2), strides=2, padding='VALID')(x)
    x = ConvBlock(8)(x)
    return nn.Dense(self.num_classes, name='head')(x.reshape(x.shape[0], -1))


def make_apply(model):
  return lambda p, x, k: model.apply({'params': p}, x, train=True, rngs={'dropout': k})


CONV_PATHS = {'book-keeping': conv_norms.conv_clipped_grad_sum,
              'two-pass': conv_norms.conv_two_pass_clipped_grad_sum}


@functools.cache
def jitted(model, fn):
  """`fn` for this model, compiled once per batch shape (clip_norm is traced)."""
  return jax.jit(functools.partial(fn, make_apply(model), LOSS))


def inputs(batch, shape, seed=0):
  rng = np.random.default_rng(seed)
  scale = np.linspace(0.1, 10, batch).reshape((-1,) + (1,) * len(shape))
  x = jnp.asarray((rng.normal(size=(batch,) + shape) * scale).astype(np.float32))
  return x, jnp.asarray(rng.integers(0, 3, batch))


def both_paths(model, x, y, mask, clip_norm, path='book-keeping'):
  params = model.init(jax.random.key(0), x[:1])['params']
  keys = jax.random.split(jax.random.key(1), len(x))
  assert conv_norms.is_supported(make_apply(model), params, x[:1], keys[0])
  return tuple(jitted(model, fn)(params, x, y, mask, keys, clip_norm)
               for fn in (CONV_PATHS[path], clipped_grad.clipped_grad_sum))


def assert_trees_close(a, b):
  jax.tree.map(lambda u, v: np.testing.assert_allclose(u, v, rtol=2e-4, atol=1e-6 * np.abs(v).max()),
               a, b)


@pytest.mark.parametrize('model, shape', [
    (TinyResNet(), (8, 8, 3)),
    (SmallCNN(num_classes=3, width=4, features=8), (8, 8, 1)),
    (ResNet9(num_classes=3), (8, 8, 3)),
])
@pytest.mark.parametrize('clip_norm', [0.1, math.inf])
@pytest.mark.parametrize('path', CONV_PATHS)
def test_conv_path_equals_the_vmap_path(model, shape, clip_norm, path):
  x, y = inputs(6, shape)
  mask = jnp.array([True, True, False, True, True, False])
  (conv, conv_losses), (vmap, vmap_losses) = both_paths(model, x, y, mask, clip_norm, path)
  assert jax.tree.structure(conv) == jax.tree.structure(vmap)
  assert_trees_close(conv, vmap)
  np.testing.assert_allclose(conv_losses, vmap_losses, rtol=1e-5)


@pytest.mark.parametrize('path', CONV_PATHS)
def test_padded_rows_contribute_nothing(path):
  model = TinyResNet()
  x, y = inputs(6, (8, 8, 3))
  mask = jnp.array([True, False, True, True, False, True])
  _, (reference, _) = both_paths(model, x, y, mask, 0.5, path)
  garbage = x.at[1].set(1e3).at[4].set(-7.0)
  (conv, _), _ = both_paths(model, garbage, y.at[1].set(2), mask, 0.5, path)
  assert_trees_close(conv, reference)


class GroupedConv(nn.Module):
  @nn.compact
  def __call__(self, x, train=False):
    x = nn.Conv(4, (3, 3), feature_group_count=2)(x)
    return nn.Dense(3)(x.reshape(x.shape[0], -1))


@pytest.mark.parametrize('model, supported', [
    (TinyResNet(dropout=0.0), True),
    (TinyResNet(dropout=0.3), False),   # per-example dropout keys: the vmap path's job
    (SmallCNN(num_classes=3, width=4, features=8, dropout=0.5), False),
    (GroupedConv(), False),
])
def test_is_supported(model, supported):
  x = jnp.zeros((1, 8, 8, 2))
  params = model.init(jax.random.key(0), x)['params']
  assert conv_norms.is_supported(make_apply(model), params, x, jax.random.key(1)) == supported
