"""LHD in the dpal loop: the EMA and its snapshot are checkpointed (a killed run resumes to the same
result), the private LHD score is charged in the ledger, k-means++ is refused under a query budget."""

import functools
import json
import os

import jax
import numpy as np
import optax
import pytest

from dpal_jax import loops
from dpal_jax.errors import ConfigError
from dpal_jax.dpsgd.trainer import Trainer
from dpal_jax.loops import dpal
from dpal_jax.loops import ema_phase
from dpal_jax.models.mlp import MLP
from tests.configs import tiny
from tests.loops import runs

NON_PRIVATE = ('--config.al.strategy=lhd', '--config.privacy.enabled=False', '--config.privacy.epsilon_al=inf',
               '--config.train.fresh_init=True', '--config.train.epochs=6')


def _summary(workdir):
  summary = json.loads(runs.read(workdir, 'summary.json'))
  summary.pop('wall_seconds')
  return summary


@pytest.mark.slow
@pytest.mark.parametrize('batching', ['poisson', 'shuffled'])
def test_lhd_run_killed_after_a_phase_resumes_to_the_uninterrupted_result(tmp_path, batching):
  whole, killed = str(tmp_path / 'whole'), str(tmp_path / 'killed')
  flags = (*NON_PRIVATE, f'--config.train.batching={batching}')
  code, _, err = runs.run(whole, *flags)
  assert code == 0, err[-2000:]
  # Stage 3 = phase 1 trained: the next query reads the snapshot pair from that checkpoint.
  runs.kill_after_checkpoint(runs.start(killed, *flags), killed, 3)
  code, _, err = runs.run(killed, *flags)
  assert code == 0 and 'Resumed' in err, err[-2000:]
  assert _summary(killed) == _summary(whole)
  assert runs.read(killed, 'metrics.jsonl').count('\n') == 3
  assert _summary(whole)['strategy'] == 'lhd' and _summary(whole)['private_selection'] is False


@pytest.mark.slow
def test_private_lhd_score_is_charged_to_every_candidate(tmp_path):
  config = tiny.get_config()
  config.al.strategy = 'lhd_score'
  config.al.lhd_score_bound = 0.5
  summary = loops.run(config, str(tmp_path / 'run'))
  with open(tmp_path / 'run' / 'ledger.json') as f:
    ledger = json.load(f)
  assert len(ledger['queries']) == len(config.al.query_sizes)
  assert summary['private_selection'] is True and summary['epsilon_unlabeled'] < float('inf')
  assert max(summary['epsilon_per_cohort']) <= config.privacy.epsilon + 1e-6


def test_kmeans_pp_lhd_is_refused_under_a_query_budget_before_anything_is_written(tmp_path):
  config = tiny.get_config()
  config.al.strategy = 'lhd'
  with pytest.raises(ConfigError, match="al.strategy 'lhd' has no private selection mechanism"):
    dpal.Loop(config)
  with pytest.raises(ConfigError, match="al.strategy 'lhd' has no private selection mechanism"):
    loops.run(config, str(tmp_path / 'run'))
  assert not os.path.exists(tmp_path / 'run' / 'ledger.json')


def test_a_snapshot_epoch_beyond_the_phase_is_refused():
  config = tiny.get_config()
  config.al.strategy, config.privacy.epsilon_al, config.al.lhd_snapshot_epoch = 'lhd', float('inf'), 3
  with pytest.raises(ConfigError, match=r'al.lhd_snapshot_epoch \(3\) must lie in \[1, train.epochs = 2\]'):
    dpal.Loop(config)


@functools.lru_cache(maxsize=1)
def _trainer():   # one trainer: its executables compile once for the three phases below
  return Trainer(MLP(num_classes=2, hidden=(8,)), optax.adam(1e-2), task='multiclass', clip_norm=1.0,
                 physical_batch_size=16, ema_decay=ema_phase.EMA_DECAY)


def _phase(fixed_epoch, epochs=4):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(64, 3)).astype(np.float32)
  y = (x[:, 0] > 0).astype(np.int32)
  trainer = _trainer()
  state = trainer.init(jax.random.key(0), x)
  state = ema_phase.train_phase(trainer, state, x, y, steps=4 * epochs, epochs=epochs, fixed_epoch=fixed_epoch,
                                key=jax.random.key(1), eval_batch_size=64, sample_rates=np.full(64, 0.25),
                                noise_multiplier=0.0, expected_batch_size=16.0, rng=rng, private=False)
  return state, ema_phase.committee(state)


def test_the_snapshot_pair_is_taken_at_its_epoch_and_kept_in_the_train_state():
  state, committee = _phase(fixed_epoch=4)
  assert set(committee) == {'online', 'ema', 'snapshot_online', 'snapshot_ema'} and int(state.step) == 16
  jax.tree.map(np.testing.assert_array_equal, committee['snapshot_online'], committee['online'])
  jax.tree.map(np.testing.assert_array_equal, committee['snapshot_ema'], committee['ema'])
  _, early = _phase(fixed_epoch=1)
  assert any(np.any(a != b) for a, b in zip(jax.tree.leaves(early['snapshot_online']),
                                            jax.tree.leaves(early['online'])))
  _, by_rule = _phase(fixed_epoch=None)   # the accuracy rule (non-private): taken at some epoch ≤ 4
  assert set(by_rule) == set(committee)


def test_shuffled_batching_is_refused_under_dp_before_anything_is_written(tmp_path):
  config = tiny.get_config()
  config.train.batching = 'shuffled'
  with pytest.raises(ConfigError, match="train.batching 'shuffled' draws permutations, not the Poisson"):
    loops.run(config, str(tmp_path / 'run'))
  assert not os.path.exists(tmp_path / 'run')


def test_shuffled_epochs_train_the_phase_and_snapshot_by_the_in_epoch_accuracies():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(64, 3)).astype(np.float32)
  y = (x[:, 0] > 0).astype(np.int32)
  trainer = _trainer()
  for fixed_epoch in (4, None):
    state = ema_phase.train_phase(trainer, trainer.init(jax.random.key(0), x), x, y, steps=16, epochs=4,
                                  fixed_epoch=fixed_epoch, key=jax.random.key(1), eval_batch_size=64,
                                  shuffled_epochs=True, private=False, phase=1)
    assert int(state.step) == 16
    if fixed_epoch == 4:
      jax.tree.map(np.testing.assert_array_equal, state.snapshot['online'], state.params)
  with pytest.raises(ValueError, match='non-private only'):
    ema_phase.train_phase(trainer, state, x, y, steps=16, epochs=4, fixed_epoch=4, key=jax.random.key(1),
                          eval_batch_size=64, shuffled_epochs=True, private=True)


def test_a_non_private_run_with_shuffled_epochs_trains_every_phase(tmp_path):
  config = tiny.get_config()
  config.privacy.enabled, config.privacy.epsilon_al, config.train.batching = False, float('inf'), 'shuffled'
  config.al.strategy, config.train.fresh_init = 'lhd', True
  summary = loops.run(config, str(tmp_path / 'run'))
  assert [p['num_labeled'] for p in summary['phases']] == [300, 400, 500]
  assert summary['final_test_metric'] > 0.5 and summary['private_selection'] is False
