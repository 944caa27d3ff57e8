"""canaries and scoring: a gradient canary's clipped gradient is exactly −C·e_i, seen only by its own
coordinate, and the scores read it back from the released iterates."""

import doctest

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dpal_jax import models
from dpal_jax.audit import canaries
from dpal_jax.audit import scoring
from dpal_jax.dpsgd import losses
from dpal_jax.dpsgd import sampler
from dpal_jax.dpsgd.trainer import Trainer

M, SHAPE = 8, (8, 8, 1)


def _model():
  return canaries.DiracCanaryModel(models.get('mlp', num_classes=10, dropout=0.0), M)


def _data(rng):
  x_real = rng.uniform(-1, 1, size=(4, *SHAPE)).astype(np.float32)
  y_real = rng.integers(0, 10, size=4).astype(np.int32)
  x_canary, y_canary = canaries.gradient_canaries(M, SHAPE)
  return x_real, y_real, x_canary, y_canary


def _grad(model, params, x, y):
  loss = losses.per_example_loss('multiclass')
  return jax.grad(lambda p: loss(model.apply({'params': p}, x[None]), y[None])[0])(params)


def test_doctests_pass():
  assert doctest.testmod(canaries).failed == 0


def test_coin_is_fair_and_canaries_are_what_they_say():
  rng = np.random.default_rng(0)
  assert abs(canaries.coin(10_000, rng).mean() - 0.5) < 0.02
  x, y = canaries.input_canaries(5, SHAPE, 10, rng)
  assert x.shape == (5, *SHAPE) and set(np.unique(x)) == {-1.0, 1.0} and y.max() < 10
  with pytest.raises(ValueError, match='at least 2'):
    canaries.coin(1, rng)


def test_gradient_canary_is_a_dirac_and_data_rows_never_touch_it():
  model, rng = _model(), np.random.default_rng(0)
  x_real, y_real, x_canary, y_canary = _data(rng)
  params = model.init(jax.random.key(0), x_real[:1])['params']
  np.testing.assert_allclose(model.apply({'params': params}, x_real),
                             model.base.apply({'params': params['base']}, x_real), rtol=1e-6)
  for i in (0, 5):
    grad = _grad(model, params, x_canary[i], y_canary[i])
    kernel = np.asarray(grad['canary']['kernel'][:, 0])
    np.testing.assert_allclose(kernel, -canaries.SLOPE * np.eye(M)[i], rtol=1e-6)
    assert all(float(jnp.abs(g).max()) == 0 for g in jax.tree.leaves(grad['base']))
  grad = _grad(model, params, x_real[0], y_real[0])
  assert float(jnp.abs(grad['canary']['kernel']).max()) == 0


def test_scores_read_the_released_step_back():
  """One noiseless plain-SGD step on canaries 0 and 3: their score is C (one clipped gradient), the
  others' 0, and the general gradient alignment agrees with the Dirac reading."""
  model, rng = _model(), np.random.default_rng(1)
  x_real, y_real, x_canary, y_canary = _data(rng)
  x, y = np.concatenate([x_real, x_canary]), np.concatenate([y_real, y_canary])
  learning_rate, expected, clip = 0.5, 4.0, 0.7
  trainer = Trainer(model, optax.sgd(learning_rate), task='multiclass', clip_norm=clip,
                    physical_batch_size=16)
  state = trainer.init(jax.random.key(0), x[:1])
  before = jax.tree.map(jnp.copy, state.params)
  batch = sampler.pad_and_chunk(np.array([0, 1, 4, 7]), 16, 16)     # two data rows, canaries 0 and 3
  state, _, _ = trainer.logical_step(state, x, y, batch, key=jax.random.key(1), noise_multiplier=0.0,
                                     expected_batch_size=expected)
  released = scoring.released_sum(before, state.params, learning_rate=learning_rate,
                                  expected_batch_size=expected)
  dirac = scoring.dirac(released)
  np.testing.assert_allclose(dirac, clip * (np.eye(M)[0] + np.eye(M)[3]), atol=1e-4)
  aligned = scoring.alignment(model, trainer.loss_fn, before, released, x_canary, y_canary, clip)
  np.testing.assert_allclose(aligned, dirac, atol=1e-4)
