"""The pool ledger's records: counting that never under-counts, the lock, atomic writes, damage.

Real processes for the lock and for SIGKILL during writes.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import dp_accounting
import numpy as np
import pytest

from dpal_jax.errors import CheckpointError
from dpal_jax.privacy import accounting
from dpal_jax.privacy import ledger_store

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DELTA = 1e-5


def laplace(eps):
  return ledger_store.events_to_json([dp_accounting.LaplaceDpEvent(1 / eps)])


def reserve(store, name, candidates, planned, prior=(), pool_size=10, workdir=None):
  with store.locked():
    return store.append('reserve', name, workdir=workdir or f'/w/{name}', pool='p', pool_size=pool_size,
                        accountant='rdp', delta=DELTA, target_epsilon=2.0,
                        candidates=list(candidates), prior=list(prior), planned=planned)


def close(store, name, units, kind='close'):
  with store.locked():
    return store.append(kind, name, stage=1, units=units, stopped=None)


def unit(name, members, events, epsilon=0.0):
  return {'unit': 0, 'name': name, 'members': members, 'events': events, 'epsilon': epsilon}


def eps(events):
  return accounting.epsilon(ledger_store.events_from_json(events), DELTA, 'rdp')


def test_a_closed_campaign_charges_each_unit_to_its_members_and_releases_the_rest(tmp_path):
  store = ledger_store.Store(str(tmp_path))
  reserve(store, 'a', range(8), planned=[laplace(1.0), laplace(1.0)])
  close(store, 'a', [unit('cohort 0', [1, 2], laplace(0.5)), unit('never labeled', None, laplace(0.1))])
  cls, found = ledger_store.histories(store.records(), 10)
  spent = [eps(found[c]['events']) for c in cls]
  assert spent[1] == spent[2] == pytest.approx(eps(laplace(0.5)))
  assert all(spent[i] == pytest.approx(eps(laplace(0.1))) for i in (0, 3, 4, 5, 6, 7))
  assert spent[8] == spent[9] == 0.0    # not candidates: untouched
  np.testing.assert_array_equal(ledger_store.labeled_by_closed(store.records(), 10),
                                np.isin(np.arange(10), [1, 2]))


def test_an_open_campaign_charges_every_candidate_all_it_planned(tmp_path):
  store = ledger_store.Store(str(tmp_path))
  reserve(store, 'a', range(5), planned=[laplace(0.3), laplace(0.2)])
  close(store, 'a', [unit('cohort 0', [0], laplace(0.3))], kind='spend')   # a spend does not close
  cls, found = ledger_store.histories(store.records(), 10)
  both = eps(laplace(0.3) + laplace(0.2))
  assert [eps(found[c]['events']) for c in cls[:5]] == pytest.approx([both] * 5)
  assert both > eps(laplace(0.3))   # more than any single unit: the worst case of whichever it ends in
  assert not ledger_store.labeled_by_closed(store.records(), 10).any()


def test_the_prior_of_a_unit_composes_the_distinct_histories_of_its_members(tmp_path):
  store = ledger_store.Store(str(tmp_path))
  reserve(store, 'a', range(10), planned=[laplace(1.0)])
  close(store, 'a', [unit('cohort 0', [0, 1], laplace(0.5)), unit('never labeled', None, laplace(0.1))])
  records = store.records()
  same = ledger_store.prior_of(records, 10, [3, 4, 5])
  assert len(same) == 1 and eps(ledger_store.events_to_json(same)) == pytest.approx(eps(laplace(0.1)))
  mixed = ledger_store.events_to_json(ledger_store.prior_of(records, 10, [0, 3]))
  assert eps(mixed) >= max(eps(laplace(0.5)), eps(laplace(0.1)))


def test_a_damaged_record_is_named_and_a_stray_temporary_file_is_ignored(tmp_path):
  store = ledger_store.Store(str(tmp_path))
  reserve(store, 'a', range(3), planned=[laplace(1.0)])
  with open(os.path.join(store.records_dir, '.tmpstray'), 'w') as f:
    f.write('{"half')
  assert len(store.records()) == 1
  close(store, 'a', [unit('never labeled', None, laplace(0.1))])
  assert not os.path.exists(os.path.join(store.records_dir, '.tmpstray'))   # cleaned by the next writer
  with open(os.path.join(store.records_dir, '00000001.json'), 'w') as f:
    f.write('{"schema": "dpal_jax.pool_ledger/1", "kind": "close"')
  with pytest.raises(CheckpointError, match='00000001.json is damaged'):
    store.records()
  os.remove(os.path.join(store.records_dir, '00000000.json'))
  with pytest.raises(CheckpointError, match='damaged'):
    store.records()   # a missing record breaks the numbering: never silently fewer records


_RESERVER = textwrap.dedent('''
    import sys
    sys.path.insert(0, {repo!r})
    import dp_accounting
    from dpal_jax.privacy import ledger_store, accounting
    store = ledger_store.Store({path!r})
    want = [dp_accounting.LaplaceDpEvent(1 / 0.9)]
    with store.locked():
      records = store.records()
      prior = ledger_store.prior_of(records, 4, range(4))
      if accounting.epsilon(prior + want, 1e-5, 'rdp') <= 2.0:
        store.append('reserve', {name!r}, workdir={name!r}, pool='p', pool_size=4, accountant='rdp',
                     delta=1e-5, target_epsilon=2.0, candidates=[0, 1, 2, 3],
                     prior=ledger_store.events_to_json(prior),
                     planned=[ledger_store.events_to_json(want)])
        print('reserved')
      else:
        print('refused')
    ''')


def test_concurrent_processes_cannot_reserve_the_same_budget_twice(tmp_path):
  path = str(tmp_path / 'ledger')
  procs = [subprocess.Popen([sys.executable, '-c', _RESERVER.format(repo=REPO, path=path, name=f'r{i}')],
                            stdout=subprocess.PIPE, text=True) for i in range(3)]
  outs = [p.communicate(timeout=120)[0].strip() for p in procs]
  assert all(p.returncode == 0 for p in procs)
  # Each reservation costs ε 0.9; the budget 2.0 fits two of the three, whichever order they take.
  cls, found = ledger_store.histories(ledger_store.Store(path).records(), 4)
  assert max(eps(found[c]['events']) for c in cls) <= 2.0
  assert outs.count('reserved') == len(ledger_store.Store(path).records()) == 2
  assert outs.count('refused') == 1


_WRITER = textwrap.dedent('''
    import sys
    sys.path.insert(0, {repo!r})
    import dp_accounting
    from dpal_jax.privacy import ledger_store
    store = ledger_store.Store({path!r})
    payload = ledger_store.events_to_json([dp_accounting.LaplaceDpEvent(10.0)] * 200)
    print('ready', flush=True)
    for i in range(10000):
      with store.locked():
        rec = store.append('reserve', f'c{{len(store.records())}}', workdir='w', pool='p', pool_size=4,
                           accountant='rdp', delta=1e-5, target_epsilon=2.0, candidates=[0, 1, 2, 3],
                           prior=[], planned=[payload])
      print(rec['seq'], flush=True)
    ''')


@pytest.mark.parametrize('trial', [*range(2), *(pytest.param(t, marks=pytest.mark.slow) for t in range(2, 22))])
def test_sigkill_during_ledger_writes_leaves_every_acknowledged_record_readable(tmp_path, trial):
  path = str(tmp_path / 'ledger')
  proc = subprocess.Popen([sys.executable, '-c', _WRITER.format(repo=REPO, path=path)],
                          stdout=subprocess.PIPE, text=True)
  assert proc.stdout.readline().strip() == 'ready'
  time.sleep(np.random.default_rng(trial).uniform(0.05, 0.6))   # mid-write, at a random point
  proc.send_signal(signal.SIGKILL)
  acknowledged = [int(line) for line in proc.communicate()[0].split()]
  records = ledger_store.Store(path).records()   # readable, whatever the kill interrupted
  assert len(records) >= len(acknowledged) and acknowledged, 'the writer wrote nothing before the kill'
  assert [r['seq'] for r in records] == list(range(len(records)))
