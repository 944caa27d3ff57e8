import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dpal_jax.dpsgd import losses, sampler
from dpal_jax.dpsgd.trainer import Trainer
from dpal_jax.errors import ConfigError
from dpal_jax.models.cnn import SmallCNN
from dpal_jax.models.mlp import MLP

LOSS = losses.per_example_loss('multiclass')
RNG = np.random.default_rng(0)
X = (RNG.normal(size=(12, 4, 4, 1)) * np.linspace(0.2, 5, 12).reshape(-1, 1, 1, 1)).astype(np.float32)
Y = RNG.integers(0, 3, 12).astype(np.int32)
INDICES = np.array([0, 2, 3, 5, 6, 7, 9])  # 7 real rows → chunks of 4 and 4 (one padded row)
EXPECTED_BATCH = 10.0


def naive_clipped_sum(model, params, rows, clip_norm):
  total = jax.tree.map(jnp.zeros_like, params)
  for i in rows:
    g = jax.grad(lambda p: LOSS(model.apply({'params': p}, X[i:i + 1]), Y[i:i + 1])[0])(params)
    norm = math.sqrt(sum(float(jnp.sum(leaf ** 2)) for leaf in jax.tree.leaves(g)))
    total = jax.tree.map(lambda t, leaf: t + min(1.0, clip_norm / (norm + 1e-6)) * leaf, total, g)
  return total


def one_step(trainer, state, noise_multiplier=0.0, private=True, key=1):
  batch = sampler.pad_and_chunk(INDICES, 4, 2)
  assert [len(c) for c in batch.chunks] == [4, 4]
  new_state, loss_sum, finite = trainer.logical_step(
      state, X, Y, batch, key=jax.random.key(key), noise_multiplier=noise_multiplier,
      expected_batch_size=EXPECTED_BATCH, private=private)
  assert bool(finite)
  return new_state, float(loss_sum)


@pytest.mark.parametrize('grad_method, private, clip_norm', [
    ('vmap', True, 0.05), ('ghost', True, 0.05), ('conv', True, 0.05), ('conv_two_pass', True, 0.05),
    ('vmap', True, math.inf),
    ('ghost', False, 0.05)])
def test_one_logical_step_is_minus_the_clipped_sum_over_the_expected_batch_size(
    grad_method, private, clip_norm):
  """With σ = 0 and SGD(lr 1): Δθ = −Σ_i clip(g_i) / E[B]; without privacy (or C = ∞) that is the
  mean gradient of the realised batch times realised / expected."""
  model = MLP(num_classes=3, hidden=(8,))
  trainer = Trainer(model, optax.sgd(1.0), task='multiclass', clip_norm=clip_norm,
                    physical_batch_size=4, grad_method=grad_method)
  state = trainer.init(jax.random.key(0), X)
  before = jax.tree.map(np.array, state.params)  # the step donates the state's buffers
  expected = naive_clipped_sum(model, before, INDICES, clip_norm if private else math.inf)
  state, loss_sum = one_step(trainer, state, private=private)
  jax.tree.map(lambda new, old, g: np.testing.assert_allclose(
      old - new, g / EXPECTED_BATCH, rtol=1e-4, atol=1e-7), state.params, before, expected)
  real_loss = LOSS(model.apply({'params': before}, X[INDICES]), Y[INDICES]).sum()
  np.testing.assert_allclose(loss_sum, real_loss, rtol=1e-5)
  assert int(state.step) == 1 and trainer.compiles == 2


def test_non_private_step_is_the_mean_gradient_times_realised_over_expected():
  model = MLP(num_classes=3, hidden=(8,))
  trainer = Trainer(model, optax.sgd(1.0), task='multiclass', clip_norm=1.0,
                    physical_batch_size=4, grad_method='vmap')
  state = trainer.init(jax.random.key(0), X)
  before = jax.tree.map(np.array, state.params)
  mean_grad = jax.grad(lambda p: LOSS(model.apply({'params': p}, X[INDICES]), Y[INDICES]).mean())(before)
  state, _ = one_step(trainer, state, private=False)
  scale = len(INDICES) / EXPECTED_BATCH
  jax.tree.map(lambda new, old, g: np.testing.assert_allclose(old - new, g * scale, rtol=1e-4, atol=1e-7),
               state.params, before, mean_grad)


def test_noise_is_added_once_per_logical_batch_with_stddev_sigma_c():
  model = MLP(num_classes=3, hidden=(32,))
  trainer = Trainer(model, optax.sgd(1.0), task='multiclass', clip_norm=0.5,
                    physical_batch_size=4, grad_method='ghost')
  state = trainer.init(jax.random.key(0), X)
  clean, _ = one_step(trainer, state, noise_multiplier=0.0)
  clean = jax.tree.map(np.asarray, clean.params)
  state = trainer.init(jax.random.key(0), X)
  noisy, _ = one_step(trainer, state, noise_multiplier=2.0)
  noise = np.concatenate([((c - n) * EXPECTED_BATCH).ravel() for c, n in
                          zip(jax.tree.leaves(clean), jax.tree.leaves(noisy.params))])
  stddev, n = 2.0 * 0.5, noise.size
  assert abs(noise.mean()) <= 4 * stddev / np.sqrt(n)
  assert abs(noise.std() - stddev) <= 4 * stddev / np.sqrt(2 * n)
  assert trainer.compiles == 2  # σ is an argument, not a constant of the executable


def test_train_phase_reports_stats_and_runs_every_step():
  trainer = Trainer(MLP(num_classes=3, hidden=(8,)), optax.adam(1e-2), task='multiclass',
                    clip_norm=1.0, physical_batch_size=4)
  state = trainer.init(jax.random.key(0), X)
  state, stats = trainer.train_phase(
      state, X, Y, sample_rates=np.full(12, 0.5), steps=6, noise_multiplier=1.0,
      expected_batch_size=6.0, rng=np.random.default_rng(1), key=jax.random.key(2), progress=False)
  assert int(state.step) == 6 and stats['steps'] == 6
  assert 0 < stats['mean_batch_size'] <= 12 and 0 <= stats['padding_fraction'] < 0.5
  assert stats['compiles'] <= 1 + 4 // stats['pad_multiple'] and np.isfinite(stats['mean_loss'])
  assert set(stats) >= {'steps', 'mean_batch_size', 'padding_fraction', 'compiles', 'mean_loss'}


def test_a_non_finite_loss_raises_naming_the_phase_and_step():
  trainer = Trainer(MLP(num_classes=3, hidden=(8,)), optax.sgd(0.1), task='multiclass',
                    clip_norm=1.0, physical_batch_size=4)
  x = X.copy()
  x[:] = np.nan
  state = trainer.init(jax.random.key(0), X)
  with pytest.raises(FloatingPointError, match=r'phase 2, step 1/3'):
    trainer.train_phase(state, x, Y, sample_rates=np.ones(12), steps=3, noise_multiplier=1.0,
                        expected_batch_size=12.0, rng=np.random.default_rng(0),
                        key=jax.random.key(0), progress=False, phase=2)


def test_auto_picks_ghost_for_dense_models_conv_for_conv_nets_without_dropout_else_vmap():
  def trainer(model, method='auto'):
    return Trainer(model, optax.sgd(0.1), task='multiclass', clip_norm=1.0,
                   physical_batch_size=4, grad_method=method)
  mlp = trainer(MLP(num_classes=3, hidden=(8,)))
  mlp.init(jax.random.key(0), X)
  assert mlp.grad_method == 'ghost'
  x = np.zeros((2, 8, 8, 1), np.float32)
  cnn = trainer(SmallCNN(num_classes=3, width=4, features=8))
  cnn.init(jax.random.key(0), x)
  assert cnn.grad_method == 'conv'
  dropout_cnn = trainer(SmallCNN(num_classes=3, width=4, features=8, dropout=0.5))
  dropout_cnn.init(jax.random.key(0), x)
  assert dropout_cnn.grad_method == 'vmap'
  with pytest.raises(ConfigError, match='grad_method'):
    trainer(SmallCNN(num_classes=3, width=4, features=8), 'ghost').init(jax.random.key(0), x)
  with pytest.raises(ConfigError, match='dropout'):
    trainer(SmallCNN(num_classes=3, width=4, features=8, dropout=0.5), 'conv').init(
        jax.random.key(0), x)


@pytest.mark.parametrize('kwargs, field', [
    (dict(clip_norm=0.0), 'clip_norm'), (dict(physical_batch_size=0), 'physical_batch_size'),
    (dict(grad_method='exact'), 'grad_method')])
def test_invalid_settings_name_the_field(kwargs, field):
  settings = dict(task='multiclass', clip_norm=1.0, physical_batch_size=4) | kwargs
  with pytest.raises(ConfigError, match=field):
    Trainer(MLP(num_classes=3), optax.sgd(0.1), **settings)


def test_rates_must_match_the_rows():
  trainer = Trainer(MLP(num_classes=3, hidden=(8,)), optax.sgd(0.1), task='multiclass',
                    clip_norm=1.0, physical_batch_size=4)
  state = trainer.init(jax.random.key(0), X)
  with pytest.raises(ConfigError, match='one sample rate per row'):
    trainer.train_phase(state, X, Y, sample_rates=np.ones(3), steps=1, noise_multiplier=1.0,
                        expected_batch_size=4.0, rng=np.random.default_rng(0),
                        key=jax.random.key(0), progress=False)


def test_precompile_compiles_the_steps_and_reports_their_memory():
  trainer = Trainer(MLP(num_classes=3, hidden=(4,)), optax.sgd(0.1), task='multiclass', clip_norm=1.0,
                    physical_batch_size=8, pad_multiple=8)
  state = trainer.init(jax.random.key(0), X)
  assert trainer.peak_memory_bytes() == 0
  trainer.precompile(state, X, Y, [8, 8])
  assert trainer.compiles == 2 and trainer.peak_memory_bytes() > 0
  trainer.train_phase(state, X, Y, sample_rates=np.full(12, 0.5), steps=2, noise_multiplier=1.0,
                      expected_batch_size=6.0, rng=np.random.default_rng(0), key=jax.random.key(1),
                      progress=False)
  assert trainer.compiles == 2  # every chunk of ≤ 8 rows is one chunk of 8: nothing new to compile
