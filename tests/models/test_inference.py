"""Batched jitted inference: equal to a direct apply, one compile per batch shape, dropout keyed per batch."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dpal_jax.models import inference
from dpal_jax.models.mlp import MLP


@pytest.fixture(scope='module')
def tiny():
  model = MLP(num_classes=3, dropout=0.5, hidden=(8,))
  params = model.init(jax.random.key(0), jnp.ones((1, 4)))['params']
  x = np.random.default_rng(0).normal(size=(37, 4)).astype(np.float32)
  return model, params, x


def test_predict_equals_direct_apply(tiny):
  model, params, x = tiny
  logits = inference.predict(model, params, x, batch_size=16)
  features = inference.predict(model, params, x, batch_size=16, method='embed')
  assert isinstance(logits, np.ndarray) and logits.shape == (37, 3) and features.shape == (37, 8)
  np.testing.assert_allclose(logits, model.apply({'params': params}, x), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(features, model.apply({'params': params}, x, method='embed'),
                             rtol=1e-5, atol=1e-6)


def test_one_compile_per_batch_shape(tiny):
  model, params, x = tiny
  model = model.clone(num_classes=5)  # a model of its own, so the cache starts empty
  params = model.init(jax.random.key(1), x[:1])['params']
  for n in (37, 20, 33, 17):
    assert inference.predict(model, params, x[:n], batch_size=16).shape == (n, 5)
  assert inference._forward(model, False, None)._cache_size() == 1


def test_small_input_and_empty_input(tiny):
  model, params, x = tiny
  np.testing.assert_allclose(inference.predict(model, params, x[:5], batch_size=1024),
                             model.apply({'params': params}, x[:5]), rtol=1e-5, atol=1e-6)
  assert inference.predict(model, params, x[:0], batch_size=16).shape == (0, 3)


def test_dropout_is_keyed_per_batch(tiny):
  model, params, x = tiny
  key = jax.random.key(3)
  a = inference.predict(model, params, x, batch_size=16, train=True, key=key)
  b = inference.predict(model, params, x, batch_size=16, train=True, key=key)
  c = inference.predict(model, params, x, batch_size=16, train=True, key=jax.random.key(4))
  np.testing.assert_array_equal(a, b)
  assert not np.allclose(a, c)
  # Each batch has its own mask: identical rows in two batches get different outputs.
  same = np.repeat(x[:1], 32, axis=0)
  out = inference.predict(model, params, same, batch_size=16, train=True, key=key)
  assert not np.allclose(out[:16], out[16:])
  with pytest.raises(ValueError, match='key'):
    inference.predict(model, params, x, batch_size=16, train=True)


def test_map_batches_returns_pytrees_trimmed(tiny):
  _, _, x = tiny
  fn = jax.jit(lambda params, xb, key: {'sum': xb.sum(-1), 'x': xb * params})
  out = inference.map_batches(fn, 2.0, x, batch_size=8)
  np.testing.assert_allclose(out['sum'], x.sum(-1), rtol=1e-6)
  np.testing.assert_allclose(out['x'], 2 * x)
