import dataclasses
import json

import dp_accounting
import hypothesis
import pytest
from dp_accounting import rdp
from hypothesis import strategies as st

from configs import default

from dpal_jax.errors import BudgetExceededError
from dpal_jax.privacy import accounting
from dpal_jax.privacy.events import DpsgdPhase
from dpal_jax.privacy.events import QueryRound
from dpal_jax.privacy.ledger import Ledger
from dpal_jax.privacy.mechanisms.gaussian_top_k import GaussianTopK
from dpal_jax.privacy.mechanisms.laplace_top_k import LaplaceTopK
from dpal_jax.privacy.planner import make_plan
from tests.privacy import json_events


def _fresh_epsilon(events, delta=1e-5):
  """ε by dp-accounting alone (default orders, no caches)."""
  accountant = rdp.RdpAccountant()
  for event in events:
    accountant.compose(event)
  return accountant.get_epsilon(delta)


def _spent_ledger(**kwargs):
  ledger = Ledger.for_cohorts('rdp', 1e-5, 30.0, 3, **kwargs)
  ledger.record_phase(0, [0.4], 2.0, 50)
  ledger.record_query(QueryRound(0, LaplaceTopK(0.5)))
  ledger.record_phase(1, [0.2, 0.3], 2.0, 80)
  ledger.record_query(QueryRound(1, GaussianTopK(3.0, sample_rate=0.5)))
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
  data = again.to_dict()
  assert data['phases'][1] == {'phase': 1, 'sample_rates': [0.2, 0.3], 'noise_multiplier': 2.0,
                               'steps': 80}
  assert data['queries'][1] == {'after_phase': 1, 'mechanism': 'gaussian', 'noise_multiplier': 3.0,
                                'sample_rate': 0.5}
  assert data['schema'] == 'dpal_jax.ledger/1' and data['labeled_at'] == [0, 1, 2, None]
  assert again.epsilon_per_cohort() == ledger.epsilon_per_cohort()


def test_a_cohort_with_rate_zero_spends_nothing_on_training():
  ledger = Ledger.for_cohorts('rdp', 1e-5, 8.0, 2)
  ledger.record_phase(0, [0.0], 1.0, 100)
  assert ledger.epsilon_per_cohort() == [0.0, 0.0]


def test_overspending_is_refused_before_anything_is_recorded():
  ledger = Ledger.for_cohorts('rdp', 1e-5, 2.0, 2)
  ledger.record_phase(0, [0.1], 2.0, 50)
  with pytest.raises(BudgetExceededError, match='cohort 0'):
    ledger.record_phase(1, [0.9, 0.1], 0.5, 500)
  assert len(ledger.events['phases']) == 1
  with pytest.raises(BudgetExceededError, match='cohort 1'):
    ledger.check_query(QueryRound(0, LaplaceTopK(5.0)))
  assert not ledger.events['queries']


def test_overspending_is_allowed_on_purpose():
  ledger = Ledger.for_cohorts('rdp', 1e-5, 2.0, 2, allow_overspend=True)
  ledger.record_phase(0, [0.9], 0.5, 500)
  assert ledger.epsilon_per_cohort()[0] > 2.0


def test_phases_must_come_in_order_with_one_rate_per_cohort():
  ledger = Ledger.for_cohorts('rdp', 1e-5, 8.0, 3)
  with pytest.raises(ValueError, match='out of order'):
    ledger.record_phase(1, [0.1, 0.1], 1.0, 10)
  with pytest.raises(ValueError, match='one sample rate per cohort'):
    ledger.record_phase(0, [0.1, 0.1], 1.0, 10)


def test_pld_ledger_matches_a_fresh_pld_accountant():
  ledger = Ledger.for_cohorts('pld', 1e-5, 8.0, 2)
  ledger.record_phase(0, [0.3], 2.0, 40)
  ledger.record_query(QueryRound(0, LaplaceTopK(1.0)))
  fresh = dp_accounting.pld.PLDAccountant(value_discretization_interval=accounting.PLD_DISCRETIZATION)
  fresh.compose(dp_accounting.LaplaceDpEvent(1.0))
  assert ledger.epsilon_per_cohort()[1] == pytest.approx(fresh.get_epsilon(1e-5))


@hypothesis.settings(max_examples=15, deadline=None)
@hypothesis.given(rates=st.lists(st.floats(0.01, 1.0), min_size=3, max_size=3),
                  sigma=st.floats(0.5, 5.0), steps=st.integers(1, 300))
def test_a_cohort_never_sampled_spends_nothing_on_training(rates, sigma, steps):
  ledger = Ledger.for_cohorts('rdp', 1e-5, 8.0, 3, allow_overspend=True)
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


def _recompute_from_json(text: str) -> list[float]:
  """Every unit's ε from ledger.json by its documented rules alone, in a fresh dp-accounting RDP
  accountant (no dpal_jax code)."""
  data = json.loads(text)
  return [json_events.unit_epsilon(data, slot=unit, labeled_at=labeled_at,
                                   prior=[_dp_event(e) for e in data['prior'][unit]] if data['prior'] else ())
          for unit, labeled_at in enumerate(data['labeled_at'])]


def _dp_event(data):
  fields = {k: _dp_event(v) if isinstance(v, dict) else v for k, v in data.items() if k != 'dp_event'}
  return getattr(dp_accounting, data['dp_event'])(**fields)


@hypothesis.settings(max_examples=12, deadline=None)
@hypothesis.given(data=st.data(), num_cohorts=st.integers(1, 4))
def test_ledger_json_alone_recomputes_every_units_epsilon(data, num_cohorts):
  prior = data.draw(st.none() | st.lists(
      st.lists(st.builds(dp_accounting.LaplaceDpEvent, st.floats(0.5, 5.0)), max_size=2),
      min_size=num_cohorts + 1, max_size=num_cohorts + 1))
  ledger = Ledger.for_cohorts('rdp', 1e-5, 30.0, num_cohorts, allow_overspend=True, prior=prior or ())
  for phase in range(num_cohorts):
    for _ in range(data.draw(st.integers(1, 2))):   # any number of DP-SGD events per phase
      rates = data.draw(st.lists(st.floats(0.0, 1.0), min_size=phase + 1, max_size=phase + 1))
      ledger.record_phase(phase, rates, data.draw(st.floats(0.5, 5.0)), data.draw(st.integers(1, 50)))
    if phase < num_cohorts - 1:
      mechanism = data.draw(st.one_of(
          st.builds(LaplaceTopK, st.floats(0.05, 2.0)),
          st.builds(GaussianTopK, st.floats(0.5, 10.0), st.none() | st.floats(0.05, 1.0))))
      ledger.record_query(QueryRound(phase, mechanism))
  assert ledger.epsilon_per_unit() == pytest.approx(_recompute_from_json(ledger.to_json()), rel=1e-9)
  assert ledger.epsilon_per_cohort() == ledger.epsilon_per_unit()[:-1]
  assert ledger.epsilon_unlabeled() == ledger.epsilon_per_unit()[-1]
  assert Ledger.from_json(ledger.to_json()) == ledger


def test_prior_spend_counts_as_spent():
  prior_events = [accounting.dpsgd_event(0.05, 1.5, 100)]
  fresh = Ledger.for_cohorts('rdp', 1e-5, 3.0, 2)
  fresh.record_phase(0, [0.05], 1.5, 100)
  fresh.record_phase(1, [0.02, 0.05], 2.0, 30)
  started = Ledger.for_cohorts('rdp', 1e-5, 3.0, 2, prior=[prior_events, [], []])
  started.record_phase(0, [0.0], 1.5, 100)
  started.record_phase(1, [0.02, 0.05], 2.0, 30)
  assert started.epsilon_per_cohort()[0] == pytest.approx(fresh.epsilon_per_cohort()[0], rel=1e-12)
  assert started.epsilon_per_cohort()[1] == fresh.epsilon_per_cohort()[1]
  assert started.training_epsilon_per_cohort()[0] == pytest.approx(   # this run's training alone
      _fresh_epsilon([accounting.dpsgd_event(0.02, 2.0, 30)]), rel=1e-9)
  with pytest.raises(BudgetExceededError, match='cohort 0'):   # the prior leaves too little for more
    started.check_phase(1, [0.5, 0.0], 1.0, 200)
  assert Ledger.from_json(started.to_json()) == started
  with pytest.raises(ValueError, match='prior spend is given for 1 units'):
    Ledger.for_cohorts('rdp', 1e-5, 3.0, 2, prior=[prior_events])


def test_units_in_any_labeling_order():
  """Units need not be labeled in index order (persons): rates only for the labeled, queries charge the
  rest."""
  ledger = Ledger('rdp', 1e-5, 30.0, labeled_at=(1, 0, None), unit='person')
  with pytest.raises(ValueError, match='one sample rate per person'):
    ledger.record_phase(0, [0.2, 0.3], 1.0, 10)   # person 0 is labeled only before phase 1
  ledger.record_phase(0, [0.0, 0.3], 1.0, 10)
  ledger.record_query(QueryRound(0, LaplaceTopK(0.5)))
  laplace = dp_accounting.LaplaceDpEvent(2.0)
  assert ledger.epsilon_per_unit() == pytest.approx([
      _fresh_epsilon([laplace]), _fresh_epsilon([accounting.dpsgd_event(0.3, 1.0, 10)]),
      _fresh_epsilon([laplace])], rel=1e-9)
  with pytest.raises(BudgetExceededError, match='person 1'):
    Ledger('rdp', 1e-5, 0.1, labeled_at=(1, 0, None), unit='person').check_phase(0, [0, 0.9], 0.5, 99)


def test_phases_may_repeat_but_never_skip():
  ledger = Ledger.for_cohorts('rdp', 1e-5, 30.0, 3)
  ledger.record_phase(0, [0.1], 1.0, 10)
  ledger.record_phase(0, [0.2], 2.0, 20)    # a second DP-SGD event in phase 0 (e.g. another model)
  assert ledger.epsilon_per_cohort()[0] == pytest.approx(_fresh_epsilon(
      [accounting.dpsgd_event(0.1, 1.0, 10), accounting.dpsgd_event(0.2, 2.0, 20)]), rel=1e-9)
  with pytest.raises(ValueError, match='out of order'):
    ledger.record_phase(2, [0.1, 0.1, 0.1], 1.0, 10)


def test_an_old_or_foreign_layout_is_refused():
  with pytest.raises(ValueError, match='dpal_jax.ledger/1'):
    Ledger.from_dict({'accountant': 'rdp', 'delta': 1e-5, 'num_cohorts': 2, 'phases': []})


@hypothesis.settings(max_examples=15, deadline=None)
@hypothesis.given(data=st.data(), target=st.floats(0.5, 6.0))
def test_whatever_is_attempted_no_unit_ever_ends_above_the_target(data, target):
  """Record every drawn query and phase the ledger accepts (a refused phase trains nobody instead)."""
  ledger = Ledger.for_cohorts('rdp', 1e-5, target, 3)
  for phase in range(3):
    if phase:
      try:
        ledger.record(QueryRound(phase - 1, LaplaceTopK(data.draw(st.floats(0.05, 3.0)))))
      except BudgetExceededError:
        pass
    rates = tuple(data.draw(st.lists(st.floats(0.0, 1.0), min_size=phase + 1, max_size=phase + 1)))
    event = DpsgdPhase(phase, data.draw(st.integers(1, 300)), data.draw(st.floats(0.5, 4.0)), rates)
    try:
      ledger.record(event)
    except BudgetExceededError:
      ledger.record(dataclasses.replace(event, sample_rates=(0.0,) * (phase + 1)))
  assert max(ledger.epsilon_per_unit()) <= target * (1 + 1e-6)
