"""cohort_exact: every cohort ends at the target ε (its own history, its queries composed), recomputed
here with fresh dp-accounting accountants from the plan alone; expected batch B in every phase."""

import importlib

import pytest

from configs import default
from dpal_jax.privacy import cohort_exact
from dpal_jax.privacy import modes
from dpal_jax.privacy.planner import make_plan
from tests.privacy import json_events


def recompute_epsilons(plan_json: dict) -> list[float]:
  """Each cohort's ε from plan.json alone, with a fresh dp-accounting RdpAccountant (default orders)."""
  return [json_events.unit_epsilon(plan_json, slot=c, labeled_at=c)
          for c in range(len(plan_json['cohort_sizes']))]


def _check_exact(plan):
  data = plan.to_dict()
  for eps in recompute_epsilons(data):
    assert plan.target_epsilon - 0.1 <= eps <= plan.target_epsilon + 1e-9
  for k in range(plan.num_phases):
    assert plan.expected_batch(k) == pytest.approx(plan.expected_batch_size, abs=1e-2)
  return data


def test_cifar10_cohort_exact_spends_exactly_the_target_per_cohort():
  config = importlib.import_module('configs.cifar10_entropy').get_config()
  config.privacy.mode = 'cohort_exact'
  plan = make_plan(config)
  _check_exact(plan)
  naive_steps = cohort_exact.epoch_rates_and_steps(modes.Problem(
      plan.cohort_sizes, plan.expected_batch_size, (30,) * 5, 8.0, 1e-5, 2.0, ()))[1]
  for k in range(1, plan.num_phases):   # step amplification: more steps than 30 epochs at batch B
    assert plan.phases[k].steps > naive_steps[k]
  assert not plan.exceeds_target()


@pytest.mark.parametrize('override', [
    {}, {'epsilon_al': 0.0},
    pytest.param({'query_mechanism': 'gaussian'}, marks=pytest.mark.slow),
    pytest.param({'epsilon': 2.0, 'epsilon_al': 0.5}, marks=pytest.mark.slow)])
def test_default_config_variants_spend_exactly_the_target(override):
  config = default.get_config()
  for field, value in override.items():
    setattr(config.privacy, field, value)
  plan = make_plan(config)
  _check_exact(plan)
  assert plan.private_queries == (config.privacy.epsilon_al > 0)


@pytest.mark.slow
def test_queries_taking_almost_all_the_budget_still_end_every_cohort_at_the_target():
  config = default.get_config()
  config.privacy.epsilon, config.privacy.epsilon_al = 3.0, 2.9
  config.train.epochs = 2
  plan = make_plan(config)
  _check_exact(plan)
  assert plan.phases[-1].sample_rates[-1] < 0.01   # the last cohort has almost nothing left to train


def test_rates_capped_at_one_keep_the_steps_and_the_batch():
  config = default.get_config()
  config.train.batch_size = config.al.initial_size   # phase 0 samples everybody at every step
  plan = make_plan(config)
  _check_exact(plan)
  assert plan.phases[0].sample_rates == (1.0,)
  assert plan.phases[0].steps >= config.train.epochs
