import dp_accounting
import hypothesis
import pytest
from dp_accounting import rdp
from hypothesis import strategies as st

from configs import default

from dpal_jax.errors import BudgetExceededError
from dpal_jax.privacy import accounting
from dpal_jax.privacy.ledger import Ledger
from dpal_jax.privacy.plan import Query
from dpal_jax.privacy.planner import make_plan


def _fresh_epsilon(events, delta=1e-5):
  """ε by dp-accounting alone (default orders, no caches)."""
  accountant = rdp.RdpAccountant()
  for event in events:
    accountant.compose(event)
  return accountant.get_epsilon(delta)


def _spent_ledger(**kwargs):
  ledger = Ledger('rdp', 1e-5, 30.0, 3, **kwargs)
  ledger.record_phase(0, [0.4], 2.0, 50)
  ledger.record_query(Query(0, 'laplace', epsilon=0.5))
  ledger.record_phase(1, [0.2, 0.3], 2.0, 80)
  ledger.record_query(Query(1, 'gaussian', noise_multiplier=3.0, sample_rate=0.5))
  ledger.record_phase(2, [0.1, 0.1, 0.4], 2.5, 60)
  return ledger


def test_each_cohort_is_charged_its_phases_and_the_queries_it_was_unlabeled_for():
  ledger = _spent_ledger()
  laplace = dp_accounting.LaplaceDpEvent(2.0)
  gaussian = dp_accounting.PoissonSampledDpEvent(0.5, dp_accounting.GaussianDpEvent(3.0))
  sgd = accounting.dpsgd_event
  expected = [
      _fresh_epsilon([sgd(0.4, 2.0, 50), sgd(0.2, 2.0, 80), sgd(0.1, 2.5, 60)]),
      _fresh_epsilon([laplace, sgd(0.3, 2.0, 80), sgd(0.1, 2.5, 60)]),
      _fresh_epsilon([laplace, gaussian, sgd(0.4, 2.5, 60)]),
  ]
  assert ledger.epsilon_per_cohort() == pytest.approx(expected, rel=1e-9)
  assert ledger.epsilon_unlabeled() == pytest.approx(_fresh_epsilon([laplace, gaussian]), rel=1e-9)
  assert ledger.training_epsilon_per_cohort()[2] == pytest.approx(
      _fresh_epsilon([sgd(0.4, 2.5, 60)]), rel=1e-9)


def test_json_round_trip_carries_the_raw_events():
  ledger = _spent_ledger()
  again = Ledger.from_json(ledger.to_json())
  assert again == ledger
  assert again.phases[1] == {'phase': 1, 'sample_rates': [0.2, 0.3], 'noise_multiplier': 2.0,
                             'steps': 80}
  assert again.queries[1] == {'after_phase': 1, 'mechanism': 'gaussian', 'noise_multiplier': 3.0,
                              'sample_rate': 0.5}
  assert again.epsilon_per_cohort() == ledger.epsilon_per_cohort()


def test_a_cohort_with_rate_zero_spends_nothing_on_training():
  ledger = Ledger('rdp', 1e-5, 8.0, 2)
  ledger.record_phase(0, [0.0], 1.0, 100)
  assert ledger.epsilon_per_cohort() == [0.0, 0.0]


def test_overspending_is_refused_before_anything_is_recorded():
  ledger = Ledger('rdp', 1e-5, 2.0, 2)
  ledger.record_phase(0, [0.1], 2.0, 50)
  with pytest.raises(BudgetExceededError, match='cohort 0'):
    ledger.record_phase(1, [0.9, 0.1], 0.5, 500)
  assert len(ledger.phases) == 1
  with pytest.raises(BudgetExceededError, match='cohort 1'):
    ledger.check_query(Query(0, 'laplace', epsilon=5.0))
  assert not ledger.queries


def test_overspending_is_allowed_on_purpose():
  ledger = Ledger('rdp', 1e-5, 2.0, 2, allow_overspend=True)
  ledger.record_phase(0, [0.9], 0.5, 500)
  assert ledger.epsilon_per_cohort()[0] > 2.0


def test_phases_must_come_in_order_with_one_rate_per_cohort():
  ledger = Ledger('rdp', 1e-5, 8.0, 3)
  with pytest.raises(ValueError, match='out of order'):
    ledger.record_phase(1, [0.1, 0.1], 1.0, 10)
  with pytest.raises(ValueError, match='one sample rate per cohort'):
    ledger.record_phase(0, [0.1, 0.1], 1.0, 10)


def test_pld_ledger_matches_a_fresh_pld_accountant():
  ledger = Ledger('pld', 1e-5, 8.0, 2)
  ledger.record_phase(0, [0.3], 2.0, 40)
  ledger.record_query(Query(0, 'laplace', epsilon=1.0))
  fresh = dp_accounting.pld.PLDAccountant(value_discretization_interval=accounting.PLD_DISCRETIZATION)
  fresh.compose(dp_accounting.LaplaceDpEvent(1.0))
  assert ledger.epsilon_per_cohort()[1] == pytest.approx(fresh.get_epsilon(1e-5))


@hypothesis.settings(max_examples=15, deadline=None)
@hypothesis.given(rates=st.lists(st.floats(0.01, 1.0), min_size=3, max_size=3),
                  sigma=st.floats(0.5, 5.0), steps=st.integers(1, 300))
def test_a_cohort_never_sampled_spends_nothing_on_training(rates, sigma, steps):
  ledger = Ledger('rdp', 1e-5, 8.0, 3, allow_overspend=True)
  for phase in range(3):
    phase_rates = rates[:phase] + [0.0] if phase == 2 else rates[:phase + 1]
    ledger.record_phase(phase, phase_rates, sigma, steps)
  assert ledger.training_epsilon_per_cohort()[2] == 0.0
  assert ledger.training_epsilon_per_cohort()[0] > 0.0


def test_a_cohort_exact_plan_replays_within_budget_and_a_larger_rate_is_refused():
  config = default.get_config()
  config.al.initial_size, config.al.query_sizes, config.al.labeling_budget = 1000, (500, 500), 2000
  plan = make_plan(config)
  ledger = Ledger.from_plan(plan)
  assert not ledger.allow_overspend
  for phase in plan.phases[:-1]:
    ledger.record_phase(phase.phase, phase.sample_rates, phase.noise_multiplier, phase.steps)
    ledger.record_query(plan.queries[phase.phase])
  last = plan.phases[-1]
  greedy = [q * 1.01 for q in last.sample_rates]
  with pytest.raises(BudgetExceededError):
    ledger.check_phase(last.phase, greedy, last.noise_multiplier, last.steps)
  ledger.record_phase(last.phase, last.sample_rates, last.noise_multiplier, last.steps)
  assert ledger.epsilon_per_cohort() == pytest.approx(list(plan.epsilon_per_cohort))
