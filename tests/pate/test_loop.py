"""Loop 'pate' end to end on the tiny config: every round in the ledger and within budget, the guaranteed
ε recomputed by a fresh accountant, nothing private in a released file, and SIGKILL resumes exactly."""

import json
import os
import stat
import types

import dp_accounting
import ml_collections
import numpy as np
import pytest

from dpal_jax import loops
from dpal_jax.errors import ConfigError
from dpal_jax.pate import aggregators
from dpal_jax.pate import loop as pate_loop
from dpal_jax.privacy import events
from dpal_jax.privacy import pate_rdp
from tests.configs import tiny_pate
from tests.loops import runs

CONFIG = 'tests/configs/tiny_pate.py'


@pytest.fixture(scope='module')
def finished(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('pate') / 'run')
  summary = loops.run(tiny_pate.get_config(), workdir)
  return workdir, summary


def _read(workdir, name):
  with open(os.path.join(workdir, name)) as f:
    return f.read()


def _round_events(ledger):
  return [events.PateRound.from_dict(r) for r in ledger['pate_rounds']]


def test_every_round_is_in_the_ledger_and_the_budget_held_before_each(finished):
  workdir, summary = finished
  config = tiny_pate.get_config()
  ledger = json.loads(_read(workdir, 'ledger.json'))
  assert ledger['unit'] == 'partition' and len(ledger['labeled_at']) == config.pate.num_teachers
  rounds = _round_events(ledger)
  rows = [json.loads(line) for line in _read(workdir, 'metrics.jsonl').splitlines()]
  ran = [row for row in rows if row['queries']]
  assert [r.round for r in rounds] == [row['round'] for row in ran]
  assert [r.tested for r in rounds] == [row['queries'] for row in ran]
  assert np.cumsum([r.answered for r in rounds]).tolist() == [row['answered'] for row in ran]
  agg = aggregators.from_config(config.pate)
  spent = []
  for r in rounds:
    # What was checked before the round: all its queries tested and answered — within the target.
    worst = agg.worst_case(r.round, r.tested).dp_event(None)
    assert _epsilon(spent + [worst], config) <= config.privacy.epsilon * (1 + 1e-6)
    spent.append(r.dp_event(None))
  # The guaranteed ε, recomputed from the raw events by dp-accounting alone.
  np.testing.assert_allclose(summary['epsilon_guaranteed'], _epsilon(spent, config), rtol=1e-9)
  assert summary['answered'] == sum(r.answered for r in rounds)
  assert summary['queries'] == summary['answered'] + summary['abstained'] + summary['student_labelled']
  assert summary['final_test_metric'] > 0.2   # 10 classes: chance is 0.1


def _epsilon(dp_events, config):
  accountant = dp_accounting.rdp.RdpAccountant()
  for event in dp_events:
    accountant.compose(event)
  return accountant.get_epsilon(config.privacy.delta)


def test_the_round_event_charges_the_pate_rdp_events(finished):
  workdir, _ = finished
  config = tiny_pate.get_config()
  r = _round_events(json.loads(_read(workdir, 'ledger.json')))[0]
  expected = dp_accounting.ComposedDpEvent([
      dp_accounting.SelfComposedDpEvent(pate_rdp.threshold_event(config.pate.sigma1), r.tested),
      dp_accounting.SelfComposedDpEvent(pate_rdp.gnmax_answer_event(config.pate.sigma2), r.answered)])
  assert _epsilon([r.dp_event(None)], config) == pytest.approx(_epsilon([expected], config), rel=1e-12)


def test_no_private_value_reaches_a_released_file(finished):
  workdir, summary = finished
  released = [json.loads(_read(workdir, name)) for name in ('summary.json', 'ledger.json')] + [
      json.loads(line) for line in _read(workdir, 'metrics.jsonl').splitlines()]
  assert not _keys(released) & {'votes', 'epsilon_data_dependent', 'smooth_sensitivity',
                                'expected_answered', 'analysis', 'teacher_test_accuracy'}
  assert summary['data_dependent_epsilon'].keys() == {'released', 'file', 'why'}
  assert summary['data_dependent_epsilon']['released'] is False
  path = os.path.join(workdir, summary['data_dependent_epsilon']['file'])
  assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
  assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
  owner = json.loads(_read(workdir, summary['data_dependent_epsilon']['file']))
  analysis, teachers = owner['analysis'], owner['teacher_test_accuracy']
  assert len(teachers['per_teacher']) == tiny_pate.get_config().pate.num_teachers
  assert 0 <= teachers['min'] <= teachers['median'] <= teachers['max'] <= 1
  assert analysis['queries'] == summary['queries']
  assert analysis['epsilon_data_dependent'] <= analysis['epsilon_data_independent'] + 1e-9


@pytest.mark.parametrize('field, value, match', [
    ('pate.public_size', 10_000, 'pate.public_size'),
    ('pate.num_teachers', 5000, 'pate.num_teachers'),
    ('pate.sigma1', None, 'pate.sigma1'),
    ('al.query_sizes', (300, 300), 'al.query_sizes'),
])
def test_a_bad_setting_is_refused_before_anything_is_written(tmp_path, field, value, match):
  config = tiny_pate.get_config()
  section, name = field.split('.')
  config[section][name] = value
  with pytest.raises(ConfigError, match=match):
    loops.run(config, str(tmp_path / 'w'))
  assert not os.path.exists(tmp_path / 'w') or not os.listdir(tmp_path / 'w')


def test_with_person_ids_nobody_is_both_public_and_sensitive():
  persons = np.repeat(np.arange(40), np.arange(40) % 5 + 1)   # 1 to 5 records a person
  dataset = types.SimpleNamespace(x_train=np.arange(len(persons), dtype=np.float32)[:, None],
                                  y_train=np.zeros(len(persons), np.int32), person_id=persons)
  for size in (1, 17, 60):
    pate = ml_collections.ConfigDict({'split_seed': 3, 'public_from': 'train', 'public_size': size})
    _, sensitive, (x_public, _) = pate_loop._split(dataset, pate)
    public = x_public[:, 0].astype(int)
    assert not set(persons[public]) & set(persons[sensitive])
    assert sorted([*public, *sensitive]) == list(range(len(persons)))
    assert size <= len(public) < size + 5   # whole persons, just enough of them


def _keys(value) -> set:
  if isinstance(value, dict):
    return set(value) | set().union(*map(_keys, value.values()))
  if isinstance(value, list):
    return set().union(*map(_keys, value))
  return set()


def _released(workdir):
  summary = json.loads(_read(workdir, 'summary.json'))
  summary.pop('wall_seconds')
  return summary, _read(workdir, 'ledger.json'), _read(workdir, 'metrics.jsonl')


@pytest.mark.slow
def test_sigkill_after_the_teachers_and_after_a_round_loses_nothing(finished, tmp_path):
  whole, _ = finished
  for stage in (1, 3):
    killed = str(tmp_path / f'killed{stage}')
    runs.kill_after_checkpoint(runs.start(killed, config=CONFIG), killed, stage)
    code, _, err = runs.run(killed, config=CONFIG)
    assert code == 0, err[-2000:]
    assert 'Resumed' in err and ('Teachers:' in err) == (stage == 1)   # republished, never retrained
    assert _released(killed) == _released(whole)
