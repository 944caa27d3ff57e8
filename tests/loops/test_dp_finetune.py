"""Confident fine-tuning under DP: planned as one pass per phase that every pool example pays, recorded in
the ledger before it is spent, recomputed from plan.json / ledger.json alone; and its refusals."""

import json
import math
import os

import numpy as np
import pytest

from configs import psl_mnist5k
from dpal_jax import errors
from dpal_jax import loops
from dpal_jax.privacy import accounting
from dpal_jax.privacy import events
from dpal_jax.privacy import planner
from dpal_jax.privacy.ledger import Ledger
from dpal_jax.privacy.plan import Plan
from tests.configs import tiny
from tests.privacy import json_events

POOL = 1500   # the tiny config's digits pool


def _config(**privacy):
  config = tiny.get_config()
  config.train.finetune_confident = True
  config.train.finetune_epochs = 2
  config.privacy.epsilon_finetune = 1.0
  for name, value in privacy.items():
    config.privacy[name] = value
  return config


def _units(data):
  """(slot, labeled_at) of every unit: the cohorts, then the never-labeled."""
  cohorts = len(data['cohort_sizes']) if 'cohort_sizes' in data else len(data['labeled_at']) - 1
  return [(c, c) for c in range(cohorts)] + [(cohorts, None)]


def test_the_plan_charges_every_unit_every_pass_and_keeps_each_at_the_target():
  config = _config()
  plan = planner.make_plan(config, pool_size=POOL)
  assert len(plan.finetunes) == len(plan.phases) == 3
  passes = {(f.steps, f.noise_multiplier, f.sample_rate) for f in plan.finetunes}
  assert len(passes) == 1
  steps, sigma, rate = passes.pop()
  assert rate == pytest.approx(config.train.batch_size / POOL)
  assert steps == config.train.finetune_epochs * math.ceil(POOL / config.train.batch_size)
  alone = accounting.epsilon([f.dp_event(events.Unit(0, None)) for f in plan.finetunes], config.privacy.delta)
  assert alone == pytest.approx(1.0, abs=1e-4)   # the passes spend privacy.epsilon_finetune
  # Every ε from plan.json by the documented rules alone: the passes count for every unit.
  data = json.loads(plan.to_json())
  recomputed = [json_events.unit_epsilon(data, slot, at) for slot, at in _units(data)]
  np.testing.assert_allclose(recomputed[:-1], plan.epsilon_per_cohort, rtol=1e-9)
  assert recomputed[-1] == pytest.approx(plan.epsilon_unlabeled, rel=1e-9)
  assert max(recomputed) <= config.privacy.epsilon * (1 + 1e-6)
  assert min(plan.epsilon_per_cohort) >= config.privacy.epsilon - 1e-3   # the training uses the rest
  without = dict(data, finetunes=[])
  assert json_events.unit_epsilon(without, 0, 0) < plan.epsilon_per_cohort[0] - 0.05   # the passes cost
  assert Plan.from_json(plan.to_json()) == plan
  # Without fine-tuning plan.json has no 'finetunes' (older plans read the same).
  config.train.finetune_confident, config.privacy.epsilon_finetune = False, None
  assert 'finetunes' not in json.loads(planner.make_plan(config, pool_size=POOL).to_json())


@pytest.mark.parametrize('change, match', [
    (dict(epsilon_finetune=None), 'set privacy.epsilon_finetune'),
    (dict(epsilon_finetune=8.0), 'set privacy.epsilon_finetune'),
    (dict(epsilon_finetune=7.5), 'leave the last cohort nothing'),
    (dict(mode='naive'), "needs privacy.mode 'cohort_exact'"),
    (dict(ledger_path='/tmp/pool_ledger'), 'privacy.ledger_path'),
])
def test_plans_the_passes_cannot_pay_for_are_refused(change, match):
  with pytest.raises(errors.ConfigError, match=match):
    planner.make_plan(_config(**change), pool_size=POOL)


def test_a_fine_tuning_budget_without_fine_tuning_is_refused():
  config = _config()
  config.train.finetune_confident = False
  with pytest.raises(errors.ConfigError, match='train.finetune_confident is off'):
    planner.make_plan(config, pool_size=POOL)


def test_loops_without_fine_tuning_refuse_it(tmp_path):
  config = psl_mnist5k.get_config()
  config.train.finetune_confident = True
  config.privacy.epsilon_finetune = 1.0
  with pytest.raises(errors.ConfigError, match="loop 'psl' runs no confident fine-tuning"):
    loops.run(config, str(tmp_path / 'run'))


def test_the_ledger_refuses_a_pass_above_the_target_before_it_is_spent():
  ledger = Ledger.for_cohorts('rdp', 1e-5, 1.0, num_cohorts=1)
  costly = events.FinetunePass(0, steps=1000, noise_multiplier=0.8, sample_rate=0.1)
  with pytest.raises(errors.BudgetExceededError, match='fine-tuning after phase 0'):
    ledger.check_finetune(costly)
  assert ledger.events['finetunes'] == []
  with pytest.raises(ValueError, match='sample_rate'):
    events.FinetunePass(0, steps=10, noise_multiplier=1.0, sample_rate=0.0)


def test_a_dp_run_pays_one_pass_per_phase_and_every_epsilon_recomputes(tmp_path):
  workdir = str(tmp_path / 'run')
  summary = loops.run(_config(), workdir)
  with open(os.path.join(workdir, 'ledger.json')) as f:
    ledger = json.load(f)
  with open(os.path.join(workdir, 'plan.json')) as f:
    plan = json.load(f)
  assert [p['after_phase'] for p in ledger['finetunes']] == [0, 1, 2]
  assert ledger['finetunes'] == plan['finetunes']   # the passes spent are the planned ones
  recomputed = [json_events.unit_epsilon(ledger, slot, at) for slot, at in _units(ledger)]
  np.testing.assert_allclose(recomputed[:-1], summary['epsilon_per_cohort'], rtol=1e-9)
  assert recomputed[-1] == pytest.approx(summary['epsilon_unlabeled'], rel=1e-9)
  assert max(recomputed) <= summary['target_epsilon'] * (1 + 1e-6)
  assert summary['private_training'] and summary['private_selection']
