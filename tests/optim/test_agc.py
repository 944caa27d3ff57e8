"""AGC against a NumPy unit-wise reference; the classifier is left alone."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dpal_jax import optim
from dpal_jax.optim import agc


def unit_norms(x):
  """Official unit-wise norms: HWIO over (h, w, in), (in, out) over in, else the whole tensor."""
  if x.ndim == 4:
    return np.sqrt((x**2).sum((0, 1, 2), keepdims=True))
  if x.ndim == 2:
    return np.sqrt((x**2).sum(0, keepdims=True))
  return np.sqrt((x**2).sum())


def np_agc(g, w, clipping=0.01, eps=1e-3):
  max_norm = clipping * np.maximum(unit_norms(w), eps)
  g_norm = unit_norms(g)
  return np.where(g_norm > max_norm, g * max_norm / np.maximum(g_norm, 1e-6), g)


@pytest.fixture
def tree():
  rng = np.random.default_rng(0)
  params = {'conv': {'kernel': rng.normal(size=(3, 3, 4, 8)), 'gain': np.ones(8),
                     'bias': np.zeros(8)},
            'block': {'skip_gain': np.asarray(0.0), 'se': {'kernel': rng.normal(size=(16, 5))}},
            'head': {'kernel': rng.normal(size=(16, 3)), 'bias': np.zeros(3)}}
  scale = {'conv': {'kernel': 0.02, 'gain': 0.001, 'bias': 5.0},
           'block': {'skip_gain': 1.0, 'se': {'kernel': 0.5}}, 'head': {'kernel': 9.0, 'bias': 9.0}}
  grads = jax.tree.map(lambda p, s: s * rng.normal(size=np.shape(p)), params, scale)
  as_f32 = lambda t: jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), t)
  return as_f32(params), as_f32(grads)


def test_unitwise_clipping_matches_reference_and_skips_the_head(tree):
  params, grads = tree
  transform = agc.adaptive_grad_clip()
  clipped, _ = transform.update(grads, transform.init(params), params)
  np.testing.assert_array_equal(clipped['head']['kernel'], grads['head']['kernel'])
  np.testing.assert_array_equal(clipped['head']['bias'], grads['head']['bias'])
  for path in [('conv', 'kernel'), ('conv', 'gain'), ('conv', 'bias'), ('block', 'skip_gain'),
               ('block', 'se', 'kernel')]:
    g, w, c = grads, params, clipped
    for k in path:
      g, w, c = g[k], w[k], c[k]
    np.testing.assert_allclose(c, np_agc(np.asarray(g, np.float64), np.asarray(w, np.float64)),
                               rtol=1e-5, atol=1e-7, err_msg='/'.join(path))
  ratio = unit_norms(np.asarray(clipped['conv']['kernel'])) / unit_norms(
      np.asarray(params['conv']['kernel']))
  assert np.all(ratio <= 0.01 * (1 + 1e-5))
  # zero-initialised parameters (skip_gain, biases) may still move by λ·eps
  assert abs(float(clipped['block']['skip_gain'])) <= 0.01 * 1e-3 * (1 + 1e-5)


def test_small_updates_pass_unchanged(tree):
  params, _ = tree
  tiny = jax.tree.map(lambda p: 1e-9 * jnp.ones_like(p), params)
  transform = agc.adaptive_grad_clip()
  out, _ = transform.update(tiny, transform.init(params), params)
  jax.tree.map(np.testing.assert_array_equal, out, tiny)


def test_sgd_agc_from_the_registry_steps_by_minus_lr_times_clipped(tree):
  params, grads = tree
  opt = optim.get('sgd_agc', 1.0)
  updates, _ = opt.update(grads, opt.init(params), params)
  transform = agc.adaptive_grad_clip()
  clipped, _ = transform.update(grads, transform.init(params), params)
  jax.tree.map(lambda u, c: np.testing.assert_allclose(u, -c, rtol=1e-6), updates, clipped)
  np.testing.assert_allclose(updates['head']['kernel'], -grads['head']['kernel'], rtol=1e-6)
