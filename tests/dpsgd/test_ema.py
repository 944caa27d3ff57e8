"""The Trainer's optional EMA of the parameters (LHD): the schedule, the step carried, the default path."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dpal_jax.dpsgd import sampler
from dpal_jax.dpsgd.train_state import EMATrainState, TrainState, ema_update
from dpal_jax.dpsgd.trainer import Trainer
from dpal_jax.models.mlp import MLP

RNG = np.random.default_rng(0)
X = RNG.normal(size=(12, 5)).astype(np.float32)
Y = RNG.integers(0, 3, 12).astype(np.int32)


def _steps(trainer, state, n, noise_multiplier=1.0):
  for t in range(n):
    batch = sampler.pad_and_chunk(np.arange(t % 3, 12, 2), 4, 2)
    state, _, finite = trainer.logical_step(state, X, Y, batch, key=jax.random.key(t),
                                            noise_multiplier=noise_multiplier, expected_batch_size=6.0)
    assert bool(finite)
  return state


def _trainer(ema_decay):
  return Trainer(MLP(num_classes=3, hidden=(8,)), optax.adam(1e-2), task='multiclass', clip_norm=1.0,
                 physical_batch_size=4, ema_decay=ema_decay)


def test_ema_follows_the_mean_teacher_schedule_over_dp_sgd_steps():
  trainer = _trainer(0.9)
  state = trainer.init(jax.random.key(0), X)
  assert isinstance(state, EMATrainState)
  expected = jax.tree.map(np.array, state.ema)
  for t in range(1, 8):
    state = _steps(trainer, state, 1)
    decay = min(1 - 1 / (t + 1), 0.9)
    expected = jax.tree.map(lambda e, p, d=decay: d * e + (1 - d) * np.asarray(p), expected, state.params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), state.ema, expected)
  assert int(state.step) == 7
  # The first update weighs old and new equally; the snapshot is carried untouched.
  one = ema_update({'w': jnp.zeros(2)}, {'w': jnp.ones(2)}, jnp.int32(1), 0.999)
  np.testing.assert_allclose(one['w'], 0.5)


def test_fresh_state_keeps_the_step_counter_and_takes_the_given_ema():
  trainer = _trainer(0.999)
  state = _steps(trainer, trainer.init(jax.random.key(0), X), 3)
  fresh = EMATrainState.create(trainer.model.init(jax.random.key(5), X[:1])['params'], trainer.optimizer,
                               ema=state.ema, step=state.step)
  assert int(fresh.step) == 3
  jax.tree.map(np.testing.assert_array_equal, fresh.ema, state.ema)
  _steps(trainer, fresh, 1)   # its buffers are its own: donating it leaves `state` readable
  jax.tree.map(np.asarray, state.ema)


def test_without_ema_the_state_and_the_step_are_unchanged():
  plain, with_ema = _trainer(None), _trainer(0.999)
  a = plain.init(jax.random.key(0), X)
  b = with_ema.init(jax.random.key(0), X)
  assert type(a) is TrainState
  a, b = _steps(plain, a, 4), _steps(with_ema, b, 4)
  jax.tree.map(np.testing.assert_array_equal, a.params, b.params)
