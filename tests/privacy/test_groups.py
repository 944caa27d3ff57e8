"""Per-group budgets (privacy/groups.py, cohort_exact with a target per unit, the ledger's unit targets).

The acceptance property: a cohort_exact plan with per-group targets, replayed through the ledger as a run
spends it, leaves every group within [target − 0.1, target], recomputed from ledger.json alone with a fresh
dp-accounting accountant (tests/privacy/json_events.py: no dpal_jax code).
"""

import json

import numpy as np
import pytest

from configs import default
from dpal_jax.errors import BudgetExceededError, ConfigError
from dpal_jax.privacy import groups
from dpal_jax.privacy import planner
from dpal_jax.privacy.ledger import Ledger
from tests.privacy import json_events

POOL = 3000


def _labels(seed=0) -> np.ndarray:
  """Two public groupings of a pool (site, modality), drawn independently of any data."""
  rng = np.random.default_rng(seed)
  return np.stack([rng.choice(['site_a', 'site_b', 'site_c'], POOL), rng.choice(['rna', 'clin'], POOL)], 1)


def _config(group_epsilon, **privacy):
  config = default.get_config()
  config.al.initial_size, config.al.query_sizes, config.al.labeling_budget = 600, (300, 300), 1200
  config.train.batch_size, config.train.epochs = 128, 5
  config.privacy.epsilon = 4.0
  config.privacy.group_epsilon = group_epsilon
  for name, value in privacy.items():
    setattr(config.privacy, name, value)
  return config


def _replay(plan) -> dict:
  """ledger.json of a run that spends `plan` as the dpal loop does (phase 0, query 1, phase 1, …)."""
  ledger = Ledger.from_plan(plan)
  for phase in plan.phases:
    ledger.check(phase)
    ledger.record(phase)
    if phase.phase < len(plan.queries):
      ledger.record(plan.queries[phase.phase])
  return json.loads(ledger.to_json())


def _recomputed_group_epsilon(data: dict) -> dict:
  out = {}
  for slot, (labeled_at, names) in enumerate(zip(data['labeled_at'], data['unit_groups'])):
    eps = json_events.unit_epsilon(data, slot, labeled_at)
    for name in names:
      out[name] = max(out.get(name, 0.0), eps)
  return out


def test_every_group_ends_within_its_target_recomputed_from_the_ledger():
  targets = {'site_a': 1.5, 'site_b': 3.0, 'rna': 2.5}   # site_c, clin: privacy.epsilon = 4
  config = _config(targets)
  pool_groups = groups.from_labels(_labels(), targets, config.privacy.epsilon)
  plan = planner.make_plan(config, POOL, pool_groups)
  data = _replay(plan)
  assert data['schema'] == 'dpal_jax.ledger/2'
  recomputed = _recomputed_group_epsilon(data)
  expected = {'site_a': 1.5, 'site_b': 3.0, 'site_c': 4.0, 'rna': 2.5, 'clin': 4.0}
  assert set(recomputed) == set(expected)
  for name, target in expected.items():
    assert target - 0.1 <= recomputed[name] <= target * (1 + 1e-6), (name, recomputed[name])
    assert plan.epsilon_per_group[name] == pytest.approx(recomputed[name], rel=1e-9)
  # Each example's own target is the tightest of its groups: a unit of (rna, site_b) ends at 2.5, not 3.
  for slot, names in enumerate(data['unit_groups']):
    if data['labeled_at'][slot] is not None:
      own = min(expected[n] for n in names)
      assert json_events.unit_epsilon(data, slot, data['labeled_at'][slot]) <= own * (1 + 1e-6)
  # Tighter targets get lower rates in the same phase; E[B] stays the planned batch.
  rates = dict(zip(plan.unit_groups, plan.phases[0].sample_rates))
  assert rates[('clin', 'site_a')] < rates[('clin', 'site_b')] < rates[('clin', 'site_c')]
  assert plan.expected_batch(0) == pytest.approx(128, abs=1e-2)


def test_a_step_beyond_a_groups_target_is_refused_naming_it():
  targets = {'site_a': 1.0}
  config = _config(targets, epsilon_al=0.0)
  plan = planner.make_plan(config, POOL, groups.from_labels(_labels()[:, 0], targets, 4.0))
  ledger = Ledger.from_plan(plan)
  first = plan.phases[0]
  slots = len(first.sample_rates)
  a = plan.unit_groups.index(('site_a',))
  only_a = tuple(0.5 if s == a else 0.0 for s in range(slots))   # within ε = 4, above site_a's 1.0
  with pytest.raises(BudgetExceededError, match=r"cohort 0 of groups site_a to ε = .* > the target 1.0"):
    ledger.check_phase(0, only_a, first.noise_multiplier, first.steps)
  assert slots == len(plan.unit_groups) and not ledger.events['phases']
  back = Ledger.from_json(ledger.to_json())
  assert back.targets == ledger.targets and back.groups == ledger.groups


def test_a_ledger_without_groups_keeps_schema_1():
  data = json.loads(Ledger.for_cohorts('rdp', 1e-5, 2.0, 2).to_json())
  assert data['schema'] == 'dpal_jax.ledger/1' and 'unit_targets' not in data


@pytest.mark.parametrize('targets, problem', [
    ({'site_z': 1.0}, r"privacy.group_epsilon names \['site_z'\], which are no groups .* \['site_a'"),
    ({'site_a': 5.0}, r"privacy.group_epsilon\['site_a'\] \(5.0\) must be a number in \(0, privacy.epsilon"),
    ({'site_a': 'x'}, r"privacy.group_epsilon\['site_a'\] \('x'\) must be a number"),
])
def test_bad_targets_are_refused_by_name(targets, problem):
  with pytest.raises(ConfigError, match=problem):
    groups.from_labels(_labels()[:, 0], targets, 4.0)


def test_plans_with_groups_are_refused_where_they_cannot_hold():
  targets = {'site_a': 1.0}
  pool_groups = groups.from_labels(_labels()[:, 0], targets, 4.0)
  with pytest.raises(ConfigError, match='needs a dataset whose pool examples name their groups'):
    planner.make_plan(_config(targets), POOL)
  with pytest.raises(ConfigError, match="needs privacy.mode 'cohort_exact'"):
    planner.make_plan(_config(targets, mode='naive'), POOL, pool_groups)
  with pytest.raises(ConfigError, match='leaves the tightest group nothing to train with'):
    planner.make_plan(_config({'site_a': 0.5}, epsilon_al=0.9), POOL,
                      groups.from_labels(_labels()[:, 0], {'site_a': 0.5}, 4.0))


def test_signatures_targets_and_layout():
  labels = np.array([['a', 'x'], ['b', 'x'], ['a', 'y'], ['a', 'x']])
  g = groups.from_labels(labels, {'a': 1.0, 'y': 0.5}, 2.0)
  assert g.signatures == (('a', 'x'), ('a', 'y'), ('b', 'x'))
  assert g.targets == (1.0, 0.5, 2.0)   # the tightest of each example's groups
  assert g.signature_of.tolist() == [0, 2, 1, 0]
  assert g.shares().tolist() == [0.5, 0.25, 0.25]
  assert groups.expected_unit_sizes([4, 8], g) == [2.0, 1.0, 1.0, 4.0, 2.0, 2.0]
  assert groups.epsilon_per_group([0.9, 0.4, 1.5], g.signatures) == {'a': 0.9, 'x': 1.5, 'y': 0.4, 'b': 1.5}
