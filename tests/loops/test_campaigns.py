"""Campaigns on one pool ledger (privacy.ledger_path) with real `python -m dpal_jax.main` processes.

Every ε is recomputed from the pool ledger's raw events with a fresh dp-accounting accountant
(`dpal_jax.ledger.fresh_epsilon`, not the project's cached accountant).
"""

import json
import os
import signal
import time

import numpy as np
import pytest

from dpal_jax import ledger as ledger_cli
from dpal_jax.privacy import ledger_store
from dpal_jax.privacy.ledger import Ledger
from tests.loops import runs

CONFIG = 'tests/configs/tiny_campaign.py'
BUDGET = 2.0


def _class_epsilons(path):
  """Per pool example, its ε over every campaign, recomputed with a fresh accountant."""
  store = ledger_store.Store(path)
  records = store.records()
  budget = ledger_store.budget(records)
  cls, found = ledger_store.histories(records, budget['pool_size'])
  per_class = [ledger_cli.fresh_epsilon(entry['events'], budget['delta'], budget['accountant'])
               for entry in found]
  return np.asarray(per_class)[cls], records


def _run(workdir, ledger, *overrides):
  return runs.run(workdir, f'--config.privacy.ledger_path={ledger}', *overrides, config=CONFIG)


@pytest.mark.slow
def test_three_campaigns_stay_within_budget_and_the_third_stops_early(tmp_path):
  ledger = str(tmp_path / 'ledger')
  summaries = []
  for i in range(3):
    code, _, err = _run(str(tmp_path / f'c{i}'), ledger)
    assert code == 0, err[-2000:]
    summaries.append(json.loads(runs.read(tmp_path / f'c{i}', 'summary.json')))
  assert [s['budget']['stopped_early'] for s in summaries] == [False, False, True]
  stopped = summaries[2]['budget']['stopped']
  assert stopped['at'].startswith('query') and stopped['unit'] and '> the target 2.0' in stopped['reason']
  assert f'Stopped before {stopped["at"]}' in err and 'Nothing was spent' in err
  assert summaries[1]['budget']['prior_epsilon'] > 0   # planned from what the first spent
  epsilons, records = _class_epsilons(ledger)
  assert epsilons.max() <= BUDGET * (1 + 1e-6)
  assert sum(r['kind'] == 'close' for r in records) == 3
  assert ledger_cli.problems(ledger) == []
  # Each workdir's ledger.json agrees with what its campaign closed with, unit by unit.
  for i, campaign in enumerate(ledger_store.campaigns(records)):
    run_ledger = Ledger.from_json(runs.read(tmp_path / f'c{i}', 'ledger.json'))
    for unit in campaign.latest['units']:
      assert run_ledger.epsilon_per_unit()[unit['unit']] == pytest.approx(unit['epsilon'], rel=1e-9)


@pytest.mark.slow
def test_two_concurrent_runs_never_spend_the_same_budget(tmp_path):
  ledger = str(tmp_path / 'ledger')
  procs = [runs.start(str(tmp_path / f'c{i}'), f'--config.privacy.ledger_path={ledger}', config=CONFIG)
           for i in range(2)]
  results = [runs.finish(p) for p in procs]
  codes = sorted(code for code, _, _ in results)
  # The first to reserve runs; the second plans from the first's worst case, which leaves it nothing.
  assert codes == [0, 2], [err[-1500:] for _, _, err in results]
  refused = next(err for code, _, err in results if code == 2)
  assert 'privacy.ledger_path' in refused and 'nothing is left' in refused
  epsilons, _ = _class_epsilons(ledger)
  assert epsilons.max() <= BUDGET * (1 + 1e-6)
  assert ledger_cli.problems(ledger) == []


@pytest.mark.slow
@pytest.mark.parametrize('trial', range(20))
def test_sigkill_at_a_random_point_never_under_counts(tmp_path, trial):
  ledger, workdir = str(tmp_path / 'ledger'), str(tmp_path / 'run')
  process = runs.start(workdir, f'--config.privacy.ledger_path={ledger}', config=CONFIG)
  time.sleep(np.random.default_rng(trial).uniform(3.0, 25.0))
  process.send_signal(signal.SIGKILL)
  runs.finish(process)
  if not ledger_store.Store(ledger).records():
    assert not os.path.exists(os.path.join(workdir, 'ledger.json'))
    return   # killed before it reserved: nothing was spent
  epsilons, records = _class_epsilons(ledger)   # readable after the kill
  published = os.path.join(workdir, 'ledger.json')
  if os.path.exists(published):   # what the run released: the pool ledger counts at least as much
    run_ledger = Ledger.from_json(runs.read(workdir, 'ledger.json'))
    campaign = ledger_store.campaigns(records)[0]
    if campaign.closed:
      for unit in campaign.latest['units']:
        members = unit['members'] if unit['members'] is not None else np.setdiff1d(
            campaign.reserve['candidates'], [m for u in campaign.latest['units'] for m in u['members'] or []])
        assert epsilons[members].min() >= run_ledger.epsilon_per_unit()[unit['unit']] * (1 - 1e-6)
    else:
      candidates = campaign.reserve['candidates']
      assert epsilons[candidates].min() >= max(run_ledger.epsilon_per_unit()) * (1 - 1e-6)
  assert ledger_cli.problems(ledger) == []
  if trial % 4 == 0:   # resume: the run closes its campaign, the unused reservation is released
    code, _, err = _run(workdir, ledger)
    assert code == 0, err[-2000:]
    assert ledger_store.campaigns(ledger_store.Store(ledger).records())[0].closed
    assert ledger_cli.problems(ledger) == []
