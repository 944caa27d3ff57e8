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
from dpal_jax.errors import ConfigError
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


def test_a_campaign_whose_query_budget_is_spent_falls_back_to_random_at_no_cost(tmp_path):
  from dpal_jax import loops  # pylint: disable=g-import-not-at-top
  from dpal_jax.loops import campaign as campaign_lib  # pylint: disable=g-import-not-at-top
  from dpal_jax.privacy import mechanisms  # pylint: disable=g-import-not-at-top
  from tests.configs import tiny_campaign  # pylint: disable=g-import-not-at-top
  config = tiny_campaign.get_config()
  config.privacy.ledger_path = ledger = str(tmp_path / 'ledger')
  config.al.fallback = 'random'
  config.al.query_sizes = (30,)   # one round: three stages keep the default suite fast
  config.al.labeling_budget = 90
  p = config.privacy
  # An earlier campaign that labeled nobody, whose one query spent the whole query budget ε_AL.
  query = mechanisms.get(p.query_mechanism).for_budget(p.epsilon_al, 1, p.delta, p.accountant).dp_event()
  spent = ledger_store.events_to_json([query])
  store = ledger_store.Store(ledger)
  with store.locked():
    store.append('reserve', 'earlier', workdir='/elsewhere', pool=campaign_lib.pool_id(config), pool_size=1500,
                 accountant=p.accountant, delta=p.delta, target_epsilon=p.epsilon,
                 candidates=list(range(1500)), prior=[], planned=[spent])
    store.append('close', 'earlier', stage=4, stopped=None, units=[
        {'unit': 0, 'name': 'never labeled', 'members': None, 'events': spent,
         'epsilon': ledger_cli.fresh_epsilon(spent, p.delta, p.accountant)}])
  summary = loops.run(config, str(tmp_path / 'run'))
  budget = summary['budget']
  assert budget['fallback_queries'] == [1] and not budget['stopped_early']
  assert budget['prior_epsilon'] == pytest.approx(ledger_cli.fresh_epsilon(spent, p.delta, p.accountant))
  run_ledger = Ledger.from_json(runs.read(tmp_path / 'run', 'ledger.json'))
  assert run_ledger.events['queries'] == []   # the random rounds cost nothing
  assert max(summary['epsilon_per_cohort']) <= p.epsilon * (1 + 1e-6)
  assert min(summary['epsilon_per_cohort']) > budget['prior_epsilon']   # the new labels paid training
  assert ledger_cli.problems(ledger) == []
  epsilons, _ = _class_epsilons(ledger)
  assert epsilons.max() <= p.epsilon * (1 + 1e-6)


def test_a_resumed_run_keeps_its_reservation_and_a_new_one_plans_from_it(tmp_path):
  from dpal_jax.loops import campaign as campaign_lib  # pylint: disable=g-import-not-at-top
  from dpal_jax.loops import common  # pylint: disable=g-import-not-at-top
  from tests.configs import tiny_campaign  # pylint: disable=g-import-not-at-top
  config = tiny_campaign.get_config()
  config.privacy.ledger_path = ledger = str(tmp_path / 'ledger')
  plan_for = lambda candidates, prior: common.checked_plan(config, len(candidates), prior=prior)
  first = campaign_lib.from_config(config, 1500)
  plan = plan_for(first.candidates, first.prior)
  assert first.reserve(str(tmp_path / 'a'), plan, plan_for) is plan   # nothing changed: the same plan
  # Killed now. Resumed in the same workdir: its own open reservation is not a prior to itself.
  again = campaign_lib.from_config(config, 1500)
  assert again.prior == []
  again.reserve(str(tmp_path / 'a'), plan, plan_for)
  assert again.name == first.name and len(ledger_store.Store(ledger).records()) == 1
  # Another run meanwhile plans from the open reservation's worst case, which leaves it nothing.
  other = campaign_lib.from_config(config, 1500)
  with pytest.raises(ConfigError, match='nothing is left'):
    other.reserve(str(tmp_path / 'b'), plan, plan_for)
  assert len(ledger_store.Store(ledger).records()) == 1
