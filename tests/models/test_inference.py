"""Batched jitted inference: equal to a direct apply, one compile per batch shape, dropout keyed per batch."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dpal_jax.models import inference
from dpal_jax.models.mlp import MLP
from tests.row_source import RecordingRows


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


def test_a_lazy_row_source_is_read_one_batch_at_a_time(tiny):
  model, params, x = tiny
  source = RecordingRows(x)
  logits = inference.predict(model, params, source, batch_size=8)
  np.testing.assert_array_equal(logits, inference.predict(model, params, x, batch_size=8))
  assert [len(read) for read in source.reads] == [8, 8, 8, 8, 5]
  assert [row for read in source.reads for row in read] == list(range(37))


SHARDED = '''
import jax, numpy as np
from dpal_jax.al import strategies
from dpal_jax.models import inference
from dpal_jax.models.cnn import SmallCNN
assert jax.local_device_count() == 4
model = SmallCNN(num_classes=3, width=4, features=8, dropout=0.3)
params = model.init(jax.random.key(0), np.zeros((1, 8, 8, 1), np.float32))['params']
x = np.random.default_rng(0).normal(size=(45, 8, 8, 1)).astype(np.float32)
one = jax.devices()[:1]
for train in (False, True):
  fn = inference._forward(model, train, None)
  key = jax.random.key(1) if train else None
  a = inference.map_batches(fn, params, x, batch_size=6, key=key)            # batch 8 on 4 devices
  b = inference.map_batches(fn, params, x, batch_size=8, key=key, devices=one)
  np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
bald = strategies.pool_scores(strategies.get('bald'), model=model, params=params, x=x,
                              task='multiclass', key=jax.random.key(2), batch_size=16, mc_samples=3)
assert bald.shape == (45,) and np.all(np.isfinite(bald))
print('ok')
'''


def test_batches_split_across_local_devices_give_the_single_device_outputs():
  root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=4', JAX_PLATFORMS='cpu')
  result = subprocess.run([sys.executable, '-c', SHARDED], env=env, cwd=root, capture_output=True,
                          text=True, timeout=300)
  assert result.returncode == 0 and result.stdout.split() == ['ok'], result.stderr[-3000:]
