"""NFNet in Flax against an independent NumPy forward (float64) of the official architecture."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dpal_jax import models
from third_party.nfnets import nfnet

GAMMA = 1.7015043497085571
TINY = dict(width_multiplier=1 / 8, group_width=16, depths=(1, 2, 1, 1))  # widths 32, 64, 192, 192


def np_act(x):
  return GAMMA * 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def same_padding(n, k, s):
  total = max((-(-n // s) - 1) * s + k - n, 0)
  return total // 2, total - total // 2


def np_wsconv(x, p, stride=1, groups=1):
  w = np.asarray(p['kernel'], np.float64)
  k, _, cin, cout = w.shape
  scale = np.asarray(p['gain']) / np.sqrt(np.maximum(w.var((0, 1, 2)) * k * k * cin, 1e-4))
  w = (w - w.mean((0, 1, 2))) * scale
  n, h, wd, _ = x.shape
  xp = np.pad(x, ((0, 0), same_padding(h, k, stride), same_padding(wd, k, stride), (0, 0)))
  ho, wo = -(-h // stride), -(-wd // stride)
  out = np.zeros((n, ho, wo, cout))
  gout = cout // groups
  for g in range(groups):
    for i in range(k):
      for j in range(k):
        patch = xp[:, i:i + stride * ho:stride, j:j + stride * wo:stride, g * cin:(g + 1) * cin]
        out[..., g * gout:(g + 1) * gout] += patch @ w[i, j, :, g * gout:(g + 1) * gout]
  return out + np.asarray(p['bias'])


def np_avg_pool_same(x):
  """2×2/2 'SAME' pool dividing by the valid elements (padding on the high side only)."""
  n, h, w, c = x.shape
  xp = np.pad(x, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), constant_values=np.nan)
  return np.nanmean(xp.reshape(n, (h + 1) // 2, 2, (w + 1) // 2, 2, c), axis=(2, 4))


def np_dense(x, p):
  return x @ np.asarray(p['kernel'], np.float64) + np.asarray(p['bias'])


def np_stem(x, p):
  out = x
  for i, stride in enumerate((2, 1, 1, 2)):
    if i:
      out = np_act(out)
    out = np_wsconv(out, p[f'stem_conv{i}'], stride)
  return out


def np_block(x, p, stride, beta, groups, alpha=0.2):
  out = np_act(x) * beta
  if stride > 1:
    shortcut = np_wsconv(np_avg_pool_same(out), p['conv_shortcut'])
  elif 'conv_shortcut' in p:
    shortcut = np_wsconv(out, p['conv_shortcut'])
  else:
    shortcut = x
  out = np_wsconv(out, p['conv0'])
  out = np_wsconv(np_act(out), p['conv1'], stride, groups)
  out = np_wsconv(np_act(out), p['conv1b'], 1, groups)
  out = np_wsconv(np_act(out), p['conv2'])
  se = p['squeeze_excite']
  h = np_dense(np.maximum(np_dense(out.mean((1, 2)), se['linear']), 0.0), se['linear_1'])
  out = 2.0 / (1.0 + np.exp(-h))[:, None, None, :] * out
  return out * float(p['skip_gain']) * alpha + shortcut


def np_tiny_forward(x, p):
  """TINY config: blocks (stride, β, groups) as the official β schedule gives for depths 1,2,1,1."""
  a = 0.2
  std_after_reset = np.sqrt(1 + a**2)
  schedule = [(1, 1.0, 1), (2, 1.0 / std_after_reset, 2), (1, 1.0 / std_after_reset, 2),
              (2, 1.0 / np.sqrt(1 + 2 * a**2), 6), (2, 1.0 / std_after_reset, 6)]
  out = np_stem(x, p)
  for index, (stride, beta, groups) in enumerate(schedule):
    name = 'nf_block' if index == 0 else f'nf_block_{index}'
    out = np_block(out, p[name], stride, beta, groups)
  out = np_act(np_wsconv(out, p['final_conv'])).mean((1, 2))
  return np_dense(out, p['head'])


def random_params(model, seed=1):
  """Random values for every leaf (skip gains are zero at init, so init values would hide blocks)."""
  shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 64, 64, 3)))['params']
  rng = np.random.default_rng(seed)

  def draw(path, leaf):
    base = 1.0 if path[-1].key == 'gain' else 0.0
    return jnp.asarray(base + 0.3 * rng.normal(size=leaf.shape), jnp.float32)

  return jax.tree_util.tree_map_with_path(draw, shapes)


def rel_err(got, want):
  return float(np.linalg.norm(np.asarray(got, np.float64) - want) / np.linalg.norm(want))


@pytest.fixture(scope='module')
def tiny():
  model = nfnet.NFNet(num_classes=5, dropout=0.0, **TINY)
  return model, random_params(model)


@pytest.mark.parametrize('size', [192, 200])
def test_stem_and_full_forward_match_numpy(tiny, size):
  model, params = tiny
  x = np.random.default_rng(size).normal(size=(2, size, size, 3)).astype(np.float32)
  p64 = jax.tree.map(lambda a: np.asarray(a, np.float64), params)
  x64 = x.astype(np.float64)
  logits, state = jax.jit(lambda p, x: model.apply(
      {'params': p}, x, capture_intermediates=lambda m, _: m.name == 'stem_conv3'))(params, x)
  stem = state['intermediates']['stem_conv3']['__call__'][0]
  assert rel_err(stem, np_stem(x64, p64)) <= 1e-5
  assert logits.shape == (2, 5)
  assert rel_err(logits, np_tiny_forward(x64, p64)) <= 1e-5


def test_transition_block_pools_odd_maps_like_haiku(tiny):
  """A stride-2 block on a 25×25 map: Flax's default count_include_pad=True would differ here."""
  _, params = tiny
  p = params['nf_block_3']
  block = nfnet.NFBlock(192, stride=2, beta=0.7, group_width=16)
  x = np.random.default_rng(0).normal(size=(2, 25, 25, 64)).astype(np.float32)
  out = jax.jit(block.apply)({'params': p}, x)
  assert out.shape == (2, 13, 13, 192)
  want = np_block(x.astype(np.float64), jax.tree.map(np.asarray, p), 2, 0.7, 6)
  assert rel_err(out, want) <= 1e-5


def test_f0_has_the_official_leaves_and_parameter_count():
  model = models.get('nfnet_f0', num_classes=1000)
  params = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 192, 192, 3)))['params']
  leaves = jax.tree.leaves(params)
  assert len(leaves) == 233
  assert sum(leaf.size for leaf in leaves) == 71_489_284
  assert params['head']['kernel'].shape == (3072, 1000)
  assert params['nf_block_9']['conv_shortcut']['kernel'].shape == (1, 1, 1536, 1536)
  assert 'conv_shortcut' not in params['nf_block_10']


@pytest.mark.parametrize('name,blocks', [('nfnet_f1', 24), ('nfnet_f3', 48)])
def test_larger_variants_follow_the_variant_table(name, blocks):
  model = models.get(name, num_classes=10)
  params = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 64, 64, 3)))['params']
  assert sum(k.startswith('nf_block') for k in params) == blocks
  assert len(jax.tree.leaves(params)) == 233 + 17 * (blocks - 12)  # 17 leaves per plain block


def test_embed_is_the_pooled_final_conv_and_head_maps_it(tiny):
  model, params = tiny
  x = jnp.asarray(np.random.default_rng(0).normal(size=(3, 64, 64, 3)), jnp.float32)
  features = jax.jit(lambda p, x: model.apply({'params': p}, x, method=model.embed))(params, x)
  assert features.shape == (3, 2 * 192)
  logits = jax.jit(model.apply)({'params': params}, x)
  np.testing.assert_allclose(
      logits, features @ params['head']['kernel'] + params['head']['bias'], rtol=1e-4, atol=1e-5)


def test_stochastic_depth_draws_per_example_under_vmap(tiny):
  _, params = tiny
  model = nfnet.NFNet(num_classes=5, dropout=0.0, stochdepth_rate=1.9, **TINY)
  x = jnp.broadcast_to(jnp.asarray(np.random.default_rng(0).normal(size=(1, 64, 64, 3)),
                                   jnp.float32), (16, 1, 64, 64, 3))

  def one(x1, key):
    return model.apply({'params': params}, x1, train=True, rngs={'dropout': key})[0]

  out = jax.jit(jax.vmap(one))(x, jax.random.split(jax.random.key(3), 16))
  eval_out = jax.jit(model.apply)({'params': params}, x[0])[0]
  assert len({tuple(np.round(o, 4)) for o in np.asarray(out)}) > 1  # masks differ per example
  assert not np.allclose(out, eval_out)


def test_head_dropout_only_in_training(tiny):
  _, params = tiny
  model = nfnet.NFNet(num_classes=5, dropout=0.5, stochdepth_rate=0.0, **TINY)
  x = jnp.ones((2, 64, 64, 3))
  train = jax.jit(lambda key: model.apply({'params': params}, x, True, rngs={'dropout': key}))
  evaluate = jax.jit(lambda: model.apply({'params': params}, x))
  assert not np.allclose(train(jax.random.key(0)), train(jax.random.key(1)))
  np.testing.assert_array_equal(evaluate(), evaluate())
