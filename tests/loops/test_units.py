"""The DP-AL loop over privacy units (loops/units.py): per-group budgets and person-level DP end to end,
on the tiny digits config with simulated sites and persons (data/units.py)."""

import importlib
import json
import os

import pytest

from dpal_jax import loops
from dpal_jax.errors import ConfigError
from tests.configs import tiny
from tests.privacy import json_events

TARGETS = {'site_0': 4.0, 'site_1': 6.0}   # site_2: privacy.epsilon = 8


def _config(**dataset):
  config = tiny.get_config()
  config.train.grad_method = 'vmap'   # the person-level path's gradients, for exact comparisons
  for name, value in dataset.items():
    setattr(config.dataset, name, value)
  return config


def _run(config, workdir):
  summary = loops.run(config, str(workdir))
  with open(os.path.join(workdir, 'ledger.json'), encoding='utf-8') as f:
    ledger = json.load(f)
  with open(os.path.join(workdir, 'metrics.jsonl'), encoding='utf-8') as f:
    rows = [json.loads(line) for line in f]
  return summary, ledger, rows


@pytest.mark.slow   # ≈ 20–70 s on 2 loaded cores
def test_every_group_ends_within_its_target_in_a_run(tmp_path):
  config = _config(sites=3)
  config.privacy.group_epsilon = TARGETS
  summary, ledger, _ = _run(config, tmp_path / 'run')
  assert ledger['schema'] == 'dpal_jax.ledger/2'
  recomputed = {}
  for slot, (labeled_at, names) in enumerate(zip(ledger['labeled_at'], ledger['unit_groups'])):
    for name in names:
      recomputed[name] = max(recomputed.get(name, 0.0), json_events.unit_epsilon(ledger, slot, labeled_at))
  for name, target in (TARGETS | {'site_2': 8.0}).items():
    assert target - 0.1 <= recomputed[name] <= target * (1 + 1e-6), (name, recomputed[name])
    assert summary['epsilon_per_group'][name] == pytest.approx(recomputed[name], rel=1e-9)


@pytest.mark.slow   # three runs, ≈ 100 s on 2 loaded cores
def test_one_record_per_person_is_the_record_level_run_and_more_records_keep_its_ledger(tmp_path):
  record, record_ledger, record_rows = _run(_config(), tmp_path / 'records')
  person, person_ledger, person_rows = _run(_config(max_records_per_person=1), tmp_path / 'persons')
  assert person['privacy_unit'] == 'person' and 'privacy_unit' not in record
  assert person_ledger.pop('privacy_unit') == 'person' and 'privacy_unit' not in record_ledger
  assert person_ledger == record_ledger   # the same events and ε per unit, the unit now a person
  for a, b in zip(record_rows, person_rows):   # the same DP steps: the same test accuracy per phase
    assert a['test_metric'] == pytest.approx(b['test_metric'], abs=0.01)
  # Persons of 1–3 records: al sizes count persons, so the plan and every person's ε stay the same.
  several, several_ledger, _ = _run(_config(max_records_per_person=3), tmp_path / 'several')
  assert several_ledger.pop('privacy_unit') == 'person' and several_ledger == record_ledger
  assert [p['num_labeled'] for p in several['phases']] == [p['num_labeled'] for p in record['phases']]
  assert max(several['epsilon_per_cohort']) <= several['target_epsilon'] * (1 + 1e-6)


def test_loops_and_options_that_cannot_account_per_person_or_group_refuse(tmp_path):
  config = _config(max_records_per_person=2)
  config.audit.enabled = True
  with pytest.raises(ConfigError, match='audit.enabled: the audit trains per record'):
    loops.run(config, str(tmp_path / 'a'))
  config = _config(max_records_per_person=2)
  config.loop, config.train.optimizer = 'audit', 'sgd'
  with pytest.raises(ConfigError, match="loop 'audit' accounts per pool example"):
    loops.run(config, str(tmp_path / 'b'))
  config = _config()
  config.privacy.group_epsilon = TARGETS
  with pytest.raises(ConfigError, match='needs a dataset whose pool examples name their groups'):
    loops.run(config, str(tmp_path / 'c'))
  assert not os.listdir(tmp_path)   # refused before anything was written



@pytest.mark.parametrize('loop', ['audit', 'pate', 'psl'])
def test_loops_that_train_on_poisson_batches_only_refuse_shuffled_epochs(tmp_path, loop):
  config = importlib.import_module(f'tests.configs.tiny_{loop}').get_config()
  config.train.batching = 'shuffled'
  with pytest.raises(ConfigError, match=f"loop '{loop}' trains on Poisson batches only and cannot honour "
                                        "train.batching 'shuffled'"):
    loops.run(config, str(tmp_path / 'run'))
  assert not os.listdir(tmp_path)   # refused before anything was written
