"""PATE privacy analysis: the data-independent events and the PATE ledger event, the data-dependent
RDP bounds of Papernot et al. 2018 and their reference values, smooth sensitivity, `analyze`."""

import doctest
import json

import dp_accounting
import hypothesis
import numpy as np
import pytest
from dp_accounting import pld
from dp_accounting import rdp
from hypothesis import strategies as st

from dpal_jax.privacy import events
from dpal_jax.privacy import pate_rdp
from dpal_jax.privacy.events import PateRound
from dpal_jax.privacy.ledger import Ledger

ROUNDS = st.one_of(
    st.builds(PateRound, st.integers(0, 9), st.just('gnmax'), st.integers(0, 500),
              sigma2=st.floats(1.0, 100.0)),
    st.builds(PateRound, st.integers(0, 9), st.just('lnmax'), st.integers(0, 500),
              laplace_scale=st.floats(1.0, 100.0)),
    st.integers(0, 500).flatmap(lambda tested: st.builds(
        PateRound, st.integers(0, 9), st.sampled_from(['confident_gnmax', 'interactive_gnmax']),
        st.integers(0, tested), st.just(tested), sigma1=st.floats(1.0, 500.0),
        sigma2=st.floats(1.0, 100.0), threshold=st.floats(0.0, 300.0))))


# The data-independent events.

def _rdp(event, orders=(2.0, 8.0, 32.0)):
  accountant = rdp.RdpAccountant(list(orders))
  accountant.compose(event)
  return np.asarray(accountant._rdp)  # pylint: disable=protected-access


def test_gnmax_answer_has_rdp_alpha_over_sigma_squared():
  orders = np.array([2.0, 8.0, 32.0])
  np.testing.assert_allclose(_rdp(pate_rdp.gnmax_answer_event(40.0)), orders / 40.0**2, rtol=1e-12)
  np.testing.assert_allclose(_rdp(pate_rdp.threshold_event(150.0)), orders / (2 * 150.0**2), rtol=1e-12)


def test_lnmax_answer_is_pure_two_over_scale():
  accountant = pld.PLDAccountant(value_discretization_interval=1e-4)
  accountant.compose(pate_rdp.lnmax_answer_event(20.0))
  assert accountant.get_epsilon(1e-12) == pytest.approx(0.1, abs=1e-3)   # the 2017 paper's 2γ, γ = 1/20
  assert accountant.get_epsilon(1e-5) < 0.1


@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(event=ROUNDS)
def test_pate_rounds_round_trip_and_charge_every_unit(event):
  data = json.loads(json.dumps(event.to_dict()))
  assert events.KINDS['pate_rounds'].from_dict(data) == event
  unit = events.Unit(3, None)
  assert event.charges(unit) and event.charges(events.Unit(0, 0))
  expected = []
  if event.tested:
    expected.append(dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(event.sigma1),
                                                      event.tested))
  if event.answered:
    answer = (dp_accounting.SelfComposedDpEvent(dp_accounting.LaplaceDpEvent(event.laplace_scale), 2)
              if event.aggregator == 'lnmax' else dp_accounting.GaussianDpEvent(event.sigma2 / 2**0.5))
    expected.append(dp_accounting.SelfComposedDpEvent(answer, event.answered))
  assert event.dp_event(unit) == (dp_accounting.ComposedDpEvent(expected) if expected
                                  else dp_accounting.NoOpDpEvent())


@pytest.mark.parametrize('kwargs, match', [
    ({'aggregator': 'gnmax', 'answered': 3}, 'sigma2 must be given'),
    ({'aggregator': 'gnmax', 'answered': 3, 'sigma2': 4.0, 'sigma1': 2.0}, 'sigma1 must be None'),
    ({'aggregator': 'gnmax', 'answered': 3, 'sigma2': 4.0, 'tested': 5}, 'tested must be 0'),
    ({'aggregator': 'confident_gnmax', 'answered': 6, 'tested': 5, 'sigma1': 1.0, 'sigma2': 1.0,
      'threshold': 3.0}, 'only 5 tested'),
    ({'aggregator': 'lnmax', 'answered': 3, 'laplace_scale': 0.0}, 'must be > 0'),
    ({'aggregator': 'max', 'answered': 3}, 'unknown'),
])
def test_pate_rounds_refuse_inconsistent_fields(kwargs, match):
  with pytest.raises(ValueError, match=match):
    PateRound(0, **kwargs)


@pytest.mark.parametrize('accountant', ['rdp', 'pld'])
def test_a_ledger_of_pate_rounds_round_trips_and_recomputes_epsilon(accountant):
  ledger = Ledger(accountant, 1e-5, 10.0, (None,) * 3, unit='partition')
  rounds = [PateRound(0, 'confident_gnmax', 100, 300, sigma1=150.0, sigma2=40.0, threshold=200.0),
            PateRound(1, 'confident_gnmax', 186, 340, sigma1=150.0, sigma2=40.0, threshold=200.0)]
  for event in rounds:
    ledger.record(event)
  again = Ledger.from_json(ledger.to_json())
  assert again.events['pate_rounds'] == rounds
  fresh = {'rdp': rdp.RdpAccountant, 'pld': pld.PLDAccountant}[accountant]()
  fresh.compose(dp_accounting.GaussianDpEvent(150.0), 640)
  fresh.compose(dp_accounting.GaussianDpEvent(40.0 / 2**0.5), 286)
  assert again.epsilon_per_unit() == pytest.approx([fresh.get_epsilon(1e-5)] * 3, rel=1e-3)
  assert again.epsilon_per_unit() == ledger.epsilon_per_unit()


def test_a_ledger_refuses_a_pate_round_over_budget():
  ledger = Ledger('rdp', 1e-5, 1.0, (None,), unit='partition')
  with pytest.raises(Exception, match='PATE round 0 would take partition 0'):
    ledger.check(PateRound(0, 'gnmax', 640, sigma2=40.0))
  assert not ledger.events['pate_rounds']


def test_doctests():
  assert doctest.testmod(pate_rdp).failed == 0
