"""Privacy events: what each charges each unit, E[B], and the plain data they and dp-accounting events
round-trip through."""

import doctest

import dp_accounting
import hypothesis
import pytest
from hypothesis import strategies as st

from dpal_jax.privacy import accounting
from dpal_jax.privacy import events
from dpal_jax.privacy.events import DpsgdPhase
from dpal_jax.privacy.events import QueryRound
from dpal_jax.privacy.events import Unit
from dpal_jax.privacy.mechanisms.gaussian_top_k import GaussianTopK
from dpal_jax.privacy.mechanisms.laplace_top_k import LaplaceTopK

RATES = st.lists(st.floats(0.0, 1.0), min_size=1, max_size=5).map(tuple)
PHASES = st.builds(DpsgdPhase, st.integers(0, 5), st.integers(0, 500), st.floats(0.0, 10.0), RATES)
MECHANISMS = st.one_of(st.builds(LaplaceTopK, st.floats(0.0, 10.0)),
                       st.builds(GaussianTopK, st.floats(0.1, 10.0), st.none() | st.floats(0.01, 1.0)))
QUERIES = st.builds(QueryRound, st.integers(0, 5), MECHANISMS)
UNITS = st.builds(Unit, st.integers(0, 6), st.none() | st.integers(0, 6))

LEAF_EVENTS = st.one_of(
    st.just(dp_accounting.NoOpDpEvent()), st.just(dp_accounting.NonPrivateDpEvent()),
    st.builds(dp_accounting.GaussianDpEvent, st.floats(0.1, 10.0)),
    st.builds(dp_accounting.LaplaceDpEvent, st.floats(0.1, 10.0)))
DP_EVENTS = st.recursive(LEAF_EVENTS, lambda inner: st.one_of(
    st.builds(dp_accounting.PoissonSampledDpEvent, st.floats(0.0, 1.0), inner),
    st.builds(dp_accounting.SelfComposedDpEvent, inner, st.integers(1, 100)),
    st.builds(dp_accounting.ComposedDpEvent, st.lists(inner, max_size=3))), max_leaves=6)


@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(phase=PHASES, unit=UNITS)
def test_a_phase_charges_a_unit_its_own_rate_or_nothing(phase, unit):
  event = phase.dp_event(unit)
  if unit.index >= len(phase.sample_rates):
    assert event == dp_accounting.NoOpDpEvent()
  else:
    assert event == accounting.dpsgd_event(phase.sample_rates[unit.index], phase.noise_multiplier,
                                           phase.steps)


@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(query=QUERIES, unit=UNITS)
def test_a_query_charges_exactly_the_units_still_unlabeled(query, unit):
  unlabeled = unit.labeled_at is None or unit.labeled_at > query.after_phase
  assert query.charges(unit) == unlabeled
  expected = query.mechanism.dp_event() if unlabeled else dp_accounting.NoOpDpEvent()
  assert query.dp_event(unit) == expected


def test_the_cohort_picture():
  """Cohort c is labeled before phase c: the query after phase 1 scores cohorts 2, 3 and the rest."""
  query = QueryRound(1, LaplaceTopK(0.5))
  cohorts = [Unit(c, c) for c in range(4)] + [Unit(4, None)]
  assert [query.charges(u) for u in cohorts] == [False, False, True, True, True]
  phase = DpsgdPhase(1, 10, 1.0, (0.2, 0.3))
  assert [phase.dp_event(u) != dp_accounting.NoOpDpEvent() for u in cohorts] == [True, True, False,
                                                                                 False, False]


@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(rates=RATES, sizes=st.lists(st.integers(0, 10_000), min_size=5, max_size=5))
def test_expected_batch_is_the_rate_weighted_unit_size(rates, sizes):
  phase = DpsgdPhase(0, 1, 1.0, rates)
  expected = phase.expected_batch(sizes)
  assert expected == pytest.approx(sum(q * n for q, n in zip(rates, sizes)))
  assert 0 <= expected <= sum(sizes[:len(rates)]) + 1e-9


@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(event=st.one_of(PHASES, QUERIES))
def test_events_round_trip_through_plain_data(event):
  data = event.to_dict()
  again = events.KINDS[event.kind].from_dict(data)
  assert again == event and again.to_dict() == data


@hypothesis.settings(max_examples=100, deadline=None)
@hypothesis.given(event=DP_EVENTS)
def test_dp_accounting_events_round_trip_through_plain_data(event):
  data = events.dp_event_to_dict(event)
  assert events.dp_event_from_dict(data) == event


def test_plain_data_must_name_a_dp_accounting_event():
  with pytest.raises(ValueError, match='does not name a dp-accounting event'):
    events.dp_event_from_dict({'dp_event': 'RdpAccountant'})


def test_doctests():
  assert doctest.testmod(events).failed == 0
