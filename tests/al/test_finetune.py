"""Confident fine-tuning: the set (labeled + confident pool points, the model's own labels), the strong
augmentation, its refusals, and one fine-tuning pass in the loop layer."""

import jax
import ml_collections
import numpy as np
import optax
import pytest

from dpal_jax.al import finetune
from dpal_jax.dpsgd.trainer import Trainer
from dpal_jax.errors import ConfigError
from dpal_jax.loops import finetune as finetune_loop
from dpal_jax.models import inference
from dpal_jax.models.mlp import MLP
from dpal_jax.privacy import events


def _model():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(1500, 2)).astype(np.float32) * 3
  model = MLP(num_classes=3, hidden=(8,))
  return model, model.init(jax.random.key(0), x[:1])['params'], x


def test_confident_set_holds_the_labeled_and_the_confident_with_the_models_labels():
  model, params, x = _model()
  labeled, pool = x[:950], x[950:]
  found = finetune.confident_set(model, params, labeled, pool, batch_size=256)
  probs = jax.nn.softmax(inference.predict(model, params, pool, batch_size=256), -1)
  confident = np.asarray(probs.max(-1)) > finetune.THRESHOLD
  assert 0 < confident.sum() < len(pool) and 950 + confident.sum() >= finetune.MIN_SIZE
  xs, ys = found
  assert len(xs) == 950 + confident.sum()
  np.testing.assert_array_equal(xs[:950], labeled)
  np.testing.assert_array_equal(xs[950:], pool[confident])
  np.testing.assert_array_equal(ys, np.argmax(inference.predict(model, params, xs, batch_size=256), -1))
  assert finetune.confident_set(model, params, labeled, pool[:10], batch_size=256) is None  # too few


def test_strong_augment_keeps_shapes_and_changes_images_but_not_points():
  rng = np.random.default_rng(1)
  images = rng.uniform(0.1, 1, size=(6, 32, 32, 3)).astype(np.float32)
  out = finetune.strong_augment(images, rng)
  assert out.shape == images.shape and out.dtype == images.dtype
  assert np.all(np.sum(out == 0, axis=(1, 2, 3)) >= 3 * 8 * 8)   # a cutout (clipped at the border)
  points = rng.normal(size=(5, 2)).astype(np.float32)
  np.testing.assert_array_equal(finetune.strong_augment(points, rng), points)


def test_finetune_is_refused_per_person_under_privacy_and_on_multilabel_data():
  config = ml_collections.ConfigDict({'train': {'finetune_confident': True}, 'privacy': {'enabled': True}})
  finetune_loop.check(config, 'multiclass')   # DP: planned and paid as a ledger unit (tests/loops)
  with pytest.raises(ConfigError, match='not persons'):
    finetune_loop.check(config, 'multiclass', by_person=True)
  config.privacy.enabled = False
  finetune_loop.check(config, 'multiclass', by_person=True)
  with pytest.raises(ConfigError, match='single-label'):
    finetune_loop.check(config, 'multilabel')


def test_the_dp_confident_set_is_never_skipped():
  model, params, x = _model()
  assert finetune.confident_set(model, params, x[:10], x[:0], batch_size=64) is None   # < MIN_SIZE
  found = finetune.confident_set(model, params, x[:10], x[:0], batch_size=64, min_size=0)
  assert found is not None and len(found[0]) == 10


def test_one_finetuning_run_changes_the_parameters():
  model, params, x = _model()
  config = ml_collections.ConfigDict({'train': {'optimizer': 'adam', 'learning_rate': 1e-3, 'batch_size': 256,
                                                'finetune_epochs': 1, 'eval_batch_size': 512}})
  base = Trainer(model, optax.adam(1e-3), task='multiclass', clip_norm=1.0, physical_batch_size=256)
  state = base.init(jax.random.key(0), x, params=params)
  before = jax.tree.map(np.array, state.params)
  trainer = finetune_loop.make_trainer(config, base)
  # Labeled = the whole set, so the confident set has ≥ MIN_SIZE points whatever the confidence.
  after = finetune_loop.run(config, trainer, state, x, x[:0], rng=np.random.default_rng(0),
                            key=jax.random.key(1))
  assert any(np.any(a != b) for a, b in zip(jax.tree.leaves(after.params), jax.tree.leaves(before)))


def test_the_dp_pass_trains_privately_at_the_plans_rate_noise_steps_and_public_divisor():
  model, params, x = _model()
  config = ml_collections.ConfigDict({'train': {'optimizer': 'adam', 'learning_rate': 1e-3, 'batch_size': 16,
                                                'finetune_epochs': 3, 'eval_batch_size': 512}})
  base = Trainer(model, optax.adam(1e-3), task='multiclass', clip_norm=1.0, physical_batch_size=64)
  state = base.init(jax.random.key(0), x, params=params)
  trainer = finetune_loop.make_trainer(config, base)
  calls, train_phase = [], trainer.train_phase

  def recorded(state, x_set, y_set, **kwargs):   # the real trainer runs; its arguments are kept
    calls.append(dict(kwargs, rows=len(x_set)))
    return train_phase(state, x_set, y_set, **kwargs)

  trainer.train_phase = recorded
  spec = events.FinetunePass(0, steps=20, noise_multiplier=3.0, sample_rate=0.01)
  # 10 labeled rows: far below MIN_SIZE, and the DP pass still runs.
  finetune_loop.run(config, trainer, state, x[:10], x[10:20], rng=np.random.default_rng(0),
                    key=jax.random.key(1), spec=spec, pool_size=1600)
  assert [c['steps'] for c in calls] == [7, 6, 7] and sum(c['steps'] for c in calls) == spec.steps
  for c in calls:
    assert c['private'] is True and c['noise_multiplier'] == 3.0
    assert c['expected_batch_size'] == pytest.approx(0.01 * 1600)   # q·N_pool, not the set's size
    assert len(c['sample_rates']) == c['rows'] and np.all(c['sample_rates'] == 0.01)
