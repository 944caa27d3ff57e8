"""`python -m dpal_jax.ledger show | check` on pool ledgers written with the store's own API."""

import json
import os
import subprocess
import sys

import dp_accounting
import pytest

from dpal_jax import ledger as ledger_cli
from dpal_jax.errors import ConfigError
from dpal_jax.privacy import ledger_store

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DELTA = 1e-5


def _events(*eps):
  return ledger_store.events_to_json([dp_accounting.LaplaceDpEvent(1 / e) for e in eps])


def _fresh(events):
  return ledger_cli.fresh_epsilon(events, DELTA, 'rdp')


def _ledger(path, cohort=(0.5, 0.7), rest=(0.1,), recorded=None):
  """One closed campaign on a pool of 6: cohort {0, 1} and the never-labeled rest."""
  store = ledger_store.Store(str(path))
  with store.locked():
    store.append('reserve', 'c1', workdir='/w/c1', pool='p', pool_size=6, accountant='rdp', delta=DELTA,
                 target_epsilon=2.0, candidates=list(range(6)), prior=[],
                 planned=[_events(*cohort), _events(*rest)])
    store.append('close', 'c1', stage=3, stopped=None, units=[
        {'unit': 0, 'name': 'cohort 0', 'members': [0, 1], 'events': _events(*cohort),
         'epsilon': _fresh(_events(*cohort)) if recorded is None else recorded},
        {'unit': 1, 'name': 'never labeled', 'members': None, 'events': _events(*rest),
         'epsilon': _fresh(_events(*rest))}])
  return str(path)


def _cli(*args):
  return subprocess.run([sys.executable, '-m', 'dpal_jax.ledger', *args], cwd=REPO, capture_output=True,
                        text=True, timeout=300)


def test_show_gives_each_class_its_remaining_budget_and_the_campaigns(tmp_path):
  path = _ledger(tmp_path / 'l')
  data = json.loads(json.dumps(ledger_cli.report(path)))   # what `show --json` prints
  by_path = {tuple(c['path']): c for c in data['classes']}
  cohort = by_path[('c1: cohort 0',)]
  assert cohort['examples'] == 2
  assert cohort['remaining'] == pytest.approx(2.0 - _fresh(_events(0.5, 0.7)))
  assert by_path[('c1: never labeled',)]['examples'] == 4
  assert data['campaigns'][0]['status'] == 'closed'
  assert 'c1: cohort 0' in ledger_cli.format_report(data)


def test_check_passes_a_consistent_ledger_and_finds_a_recorded_epsilon_that_does_not_recompute(tmp_path):
  assert ledger_cli.problems(_ledger(tmp_path / 'good')) == []
  found = ledger_cli.problems(_ledger(tmp_path / 'bad', recorded=0.3))
  assert len(found) == 1 and 'recorded ε 0.300000, recomputed' in found[0]
  with pytest.raises(SystemExit) as exit_:
    ledger_cli.main(['ledger', 'check', str(tmp_path / 'bad')])
  assert exit_.value.code == 1
  ledger_cli.main(['ledger', 'check', str(tmp_path / 'good')])   # returns: exit 0


def test_check_finds_an_overspend_and_a_spend_beyond_the_reservation(tmp_path):
  store_path = _ledger(tmp_path / 'l', cohort=(1.5, 1.5))
  found = ledger_cli.problems(store_path)
  assert any(line.startswith('overspend: 2 examples (c1: cohort 0)') for line in found)
  with open(os.path.join(store_path, 'records', '00000000.json')) as f:
    reserve = json.load(f)
  reserve['planned'] = [_events(0.1)]     # a close that spent more than was ever reserved
  with open(os.path.join(store_path, 'records', '00000000.json'), 'w') as f:
    json.dump(reserve, f)
  assert any('beyond its reservation' in line for line in ledger_cli.problems(store_path))


def test_a_damaged_or_missing_ledger_is_one_error_line(tmp_path):
  path = _ledger(tmp_path / 'l')
  with open(os.path.join(path, 'records', '00000001.json'), 'w') as f:
    f.write('{not json')
  result = _cli('check', path)
  assert result.returncode == 1
  assert result.stderr.strip().startswith('error:') and '00000001.json is damaged' in result.stderr
  assert 'Traceback' not in result.stderr
  with pytest.raises(ConfigError, match='holds no pool ledger'):   # exit 2 (dpal_jax.cli)
    ledger_cli.main(['ledger', 'show', str(tmp_path / 'nowhere')])


def test_an_open_reservation_is_bounded_by_its_planned_units_not_their_composition(tmp_path):
  store = ledger_store.Store(str(tmp_path / 'l'))
  with store.locked():
    store.append('reserve', 'c1', workdir='/w/c1', pool='p', pool_size=4, accountant='rdp', delta=DELTA,
                 target_epsilon=2.0, candidates=[0, 1, 2, 3], prior=[],
                 planned=[_events(1.5), _events(1.5)])   # composed 3.0: counted, yet each unit fits
  data = ledger_cli.report(store.path)
  assert data['classes'][0]['reserved'] and data['classes'][0]['epsilon'] > 2.0
  assert ledger_cli.problems(store.path) == []
  with store.locked():
    store.append('reserve', 'c2', workdir='/w/c2', pool='p', pool_size=4, accountant='rdp', delta=DELTA,
                 target_epsilon=2.0, candidates=[0], prior=[], planned=[_events(2.5)])
  assert any('planned unit 0 to ε' in line for line in ledger_cli.problems(store.path))
