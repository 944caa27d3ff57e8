import math

import pytest

from configs import default
from dpal_jax.errors import ConfigError
from dpal_jax.privacy.plan import Plan
from dpal_jax.privacy.planner import make_plan


def _config(**fields):
  """The default config on a fixed pool: 1000 initial + 3 × 500 queried labels, B = 256, 10 epochs."""
  config = default.get_config()
  config.al.initial_size, config.al.query_sizes, config.al.labeling_budget = 1000, (500, 500, 500), 2500
  config.train.batch_size, config.train.epochs = 256, 10
  for dotted, value in fields.items():
    section, name = dotted.split('__')
    if isinstance(value, tuple) and name == 'epochs':   # default.py types it int; per-phase is a tuple
      del config[section][name]
    setattr(getattr(config, section), name, value)
  return config


@pytest.mark.parametrize('fields, named', [
    ({'privacy__mode': 'greedy'}, 'privacy.mode'),
    ({'privacy__accountant': 'prv'}, 'privacy.accountant'),
    ({'privacy__query_mechanism': 'exponential'}, 'privacy.query_mechanism'),
    ({'privacy__epsilon_al': 8.0}, 'privacy.epsilon_al'),
    ({'privacy__epsilon_al': -1.0}, 'privacy.epsilon_al'),
    ({'privacy__epsilon_al': math.nan}, 'privacy.epsilon_al'),
    ({'privacy__epsilon': math.nan}, 'privacy.epsilon'),
    ({'privacy__delta': math.nan}, 'privacy.delta'),
    ({'privacy__epsilon': 0.0}, 'privacy.epsilon'),
    ({'privacy__delta': 1e-3}, 'privacy.delta'),
    ({'al__query_sizes': (500, 500, 600)}, 'al.query_sizes'),
    ({'train__batch_size': 2000}, 'train.batch_size'),
    ({'train__epochs': (10, 10)}, 'train.epochs'),
    ({'privacy__mode': 'step_ampl_prob', 'train__batch_size': 1000}, 'train.batch_size'),
    ({'privacy__epsilon': 1e-7, 'privacy__epsilon_al': 0.0}, 'privacy.epsilon'),
])
def test_infeasible_requests_name_the_field(fields, named):
  with pytest.raises(ConfigError, match=named.replace('.', r'\.')):
    make_plan(_config(**fields))


def test_queries_beyond_the_pool_are_refused():
  with pytest.raises(ConfigError, match=r'al\.query_sizes .* pool holds \(2000\)'):
    make_plan(_config(), pool_size=2000)


def test_non_private_plan_keeps_naive_rates_without_noise():
  plan = make_plan(_config(privacy__enabled=False))
  assert not plan.privacy_enabled and not plan.private_queries and plan.queries == ()
  assert all(p.noise_multiplier == 0 for p in plan.phases)
  assert [p.steps for p in plan.phases] == [30, 50, 70, 90]        # floor(N/B)·E, E = 10
  assert plan.phases[1].sample_rates == (0.2, 0.2)                 # 1/floor(1500/256)
  assert all(math.isinf(e) for e in plan.epsilon_per_cohort)
  assert Plan.from_json(plan.to_json()) == plan


def test_epochs_per_phase():
  plan = make_plan(_config(privacy__mode='naive', train__epochs=(1, 2, 3, 4)))
  assert [p.steps for p in plan.phases] == [3, 10, 21, 36]


@pytest.mark.parametrize('fields', [{'al__strategy': 'random'}, {'privacy__epsilon_al': 0.0},
                                    {'privacy__epsilon_al': math.inf}])
def test_free_or_non_private_selection_has_no_query_events(fields):
  plan = make_plan(_config(privacy__mode='naive', **fields))
  assert plan.queries == () and not plan.private_queries
  assert plan.epsilon_per_cohort == pytest.approx(plan.epsilon_per_cohort_additive)


@pytest.mark.parametrize('strategy, epsilon_al, unlabeled', [
    ('entropy', 0.0, math.inf), ('entropy', math.inf, math.inf), ('badge', 0.0, math.inf),
    ('random', 0.0, 0.0), ('random', 1.0, 0.0)])
def test_never_labeled_are_unbounded_only_under_non_private_data_dependent_selection(
    strategy, epsilon_al, unlabeled):
  plan = make_plan(_config(al__strategy=strategy, privacy__epsilon_al=epsilon_al))
  assert not plan.private_queries and plan.epsilon_unlabeled == unlabeled
  assert plan.to_dict()['epsilon_unlabeled'] == (None if math.isinf(unlabeled) else 0.0)
  assert not plan.exceeds_target()   # what the plan promises, the cohorts' ε, stays at the target
  private = make_plan(_config(al__strategy='entropy', privacy__epsilon_al=1.0))
  assert private.private_queries and 0 < private.epsilon_unlabeled <= 1.0 + 1e-2


def test_json_has_exactly_the_plan_schema_and_round_trips():
  plan = make_plan(_config(privacy__mode='naive'))
  data = plan.to_dict()
  assert {'schema', 'mode', 'accountant', 'target_epsilon', 'epsilon_al', 'delta',
          'expected_batch_size', 'cohort_sizes', 'phases', 'queries', 'epsilon_per_cohort',
          'seconds'} <= set(data)
  assert data['schema'] == 'dpal_jax.plan/1'
  assert [len(p['sample_rates']) for p in data['phases']] == [1, 2, 3, 4]
  assert data['queries'][0] == {'after_phase': 0, 'mechanism': 'laplace', 'epsilon': 1 / 3}
  assert Plan.from_json(plan.to_json()) == plan


def test_naive_mode_overspends_nobody_and_reports_both_figures():
  plan = make_plan(_config(privacy__mode='naive'))
  assert plan.epsilon_per_cohort[0] == pytest.approx(8.0, abs=0.011)
  assert all(e < 8.0 for e in plan.epsilon_per_cohort[1:])
  # the composed figure never exceeds the original's linear one
  assert all(c <= a + 1e-9 for c, a in zip(plan.epsilon_per_cohort, plan.epsilon_per_cohort_additive))
