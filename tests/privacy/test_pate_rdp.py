"""PATE privacy analysis: the data-independent events and the PATE ledger event, the data-dependent
RDP bounds of Papernot et al. 2018 and their reference values, smooth sensitivity, `analyze`."""

import doctest
import json
import math

import dp_accounting
import hypothesis
import mpmath
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


# (queries, answered, σ₁, σ₂, δ) of the 2018 paper's settings and their data-independent ε (dp-accounting
# RDP at the 2018 scripts' orders, then PLD), docs/pate_analysis.md.
SETTINGS = {'mnist': ((640, 286, 150, 40, 1e-5), 2.758, 2.543),
            'svhn': ((8500, 3098, 200, 40, 1e-6), 11.837, 11.138),
            'adult': ((1500, 524, 200, 40, 1e-5), 3.837, 3.543),
            'glyph': ((12000, 10762, 500, 100, 1e-8), 9.481, 9.012)}


@pytest.mark.parametrize('name', SETTINGS)
def test_data_independent_epsilon_is_dp_accounting_composition(name):
  (queries, answered, sigma1, sigma2, delta), want_rdp, want_pld = SETTINGS[name]
  fresh = {'rdp': rdp.RdpAccountant(), 'pld': pld.PLDAccountant(value_discretization_interval=1e-3),
           'scripts': rdp.RdpAccountant(list(pate_rdp.DEFAULT_ORDERS))}
  for accountant in fresh.values():
    accountant.compose(dp_accounting.GaussianDpEvent(sigma1), queries)
    accountant.compose(dp_accounting.GaussianDpEvent(sigma2 / math.sqrt(2)), answered)
  for kind in ('rdp', 'pld'):
    got = pate_rdp.data_independent_epsilon(answered, queries, aggregator='confident_gnmax',
                                            sigma1=sigma1, sigma2=sigma2, delta=delta, accountant=kind)
    assert got == pytest.approx(fresh[kind].get_epsilon(delta), rel=1e-6)
  assert fresh['scripts'].get_epsilon(delta) == pytest.approx(want_rdp, abs=6e-4)
  assert fresh['pld'].get_epsilon(delta) == pytest.approx(want_pld, abs=2e-3)


def test_data_independent_epsilon_refuses_tests_of_untested_aggregators():
  with pytest.raises(ValueError, match='runs no threshold test'):
    pate_rdp.data_independent_epsilon(10, 10, aggregator='gnmax', sigma2=40.0, delta=1e-5)
  one = pate_rdp.data_independent_epsilon(10, 0, aggregator='lnmax', laplace_scale=20.0, delta=1e-5,
                                          accountant='pld')
  assert 0.5 < one <= 10 * 0.1 + 1e-3   # ten answers of pure ε = 2/20 compose to at most 1


# Data-dependent RDP: Theorem 6, recomputed in 40-digit arithmetic from the paper's formula.

def _theorem6_mpmath(votes, sigma, order):
  mpmath.mp.dps = 40
  votes = sorted(votes, reverse=True)
  q = sum(mpmath.erfc((votes[0] - n) / (2 * mpmath.mpf(sigma))) / 2 for n in votes[1:])
  q = min(q, 1 - mpmath.mpf(1) / len(votes))
  mu2 = sigma * mpmath.sqrt(-mpmath.log(q))
  mu1 = mu2 + 1
  eps1, eps2 = mu1 / sigma**2, mu2 / sigma**2
  a = (1 - q) / (1 - (q * mpmath.exp(eps2))**((mu2 - 1) / mu2))
  b = mpmath.exp(eps1) / q**(1 / (mu1 - 1))
  bound = mpmath.log((1 - q) * a**(order - 1) + q * b**(order - 1)) / (order - 1)
  return float(mpmath.log(q)), float(min(bound, mpmath.mpf(order) / sigma**2))


# Votes (top entries of 10 classes), log q̃, RDP at α = 2, 8, 32 for σ = 40 (docs/pate_analysis.md).
REFERENCE = [((250,), -10.0192, (1.527e-5, 2.059e-5, 2.035e-4)),
             ((200, 50), -5.1792, (0.00125, 0.0016549, 0.0061755)),
             ((180, 40, 30), -4.1485, (0.00125, 0.0040022, 0.0112226)),
             ((150, 100), -1.5122, (0.00125, 0.005, 0.02))]


@pytest.mark.parametrize('top, logq, values', REFERENCE)
def test_data_dependent_gnmax_rdp_matches_the_reference_values(top, logq, values):
  votes = np.array(top + (0,) * (10 - len(top)))
  got_logq = pate_rdp.logq_gaussian(votes, 40.0)
  got = pate_rdp.rdp_gaussian(got_logq, 40.0, [2.0, 8.0, 32.0])
  assert got_logq == pytest.approx(logq, abs=5e-5)
  for value, want in zip(got, values):   # the reference values, to the digits they are given with
    assert value == pytest.approx(want, rel=6e-4)
  for order, value in zip((2.0, 8.0, 32.0), got):
    exact_logq, exact = _theorem6_mpmath(votes.tolist(), 40.0, order)
    assert got_logq == pytest.approx(exact_logq, rel=1e-9)
    if value < order / 40.0**2:          # where Theorem 6 applied, it is the exact formula
      assert value == pytest.approx(exact, rel=1e-6)


def test_threshold_rdp_matches_the_reference_values():
  orders = np.array([2.0, 8.0, 32.0])
  independent = pate_rdp.rdp_data_independent_threshold(150.0, orders)
  np.testing.assert_allclose(independent, [4.4444e-5, 1.7778e-4, 7.1111e-4], rtol=1e-4)
  for top, logpr in ((250, -0.4611), (120, -1.2144)):
    got = pate_rdp.logpr_answered(np.array([top] + [0] * 9), 200.0, 150.0)
    assert got == pytest.approx(logpr, abs=5e-5)
    assert got == pytest.approx(math.log(0.5 * math.erfc((200 - top) / (150 * math.sqrt(2)))), rel=1e-12)
    np.testing.assert_allclose(pate_rdp.rdp_threshold(got, 150.0, orders), independent, rtol=1e-12)


def test_theorem6_falls_back_where_its_conditions_fail():
  orders = np.array([2.0, 50.0, 400.0])
  logq = pate_rdp.logq_gaussian(np.array([250] + [0] * 9), 40.0)   # μ₁ ≈ 127.6
  got = pate_rdp.rdp_gaussian(logq, 40.0, orders)
  assert got[0] < orders[0] / 1600 and got[1] < orders[1] / 1600
  assert got[2] == orders[2] / 1600                                  # λ ≥ μ₁: data-independent
  assert not pate_rdp.theorem6_applies(math.log(0.5), 40.0)           # μ₂ = 33 but q̃ too large
  np.testing.assert_array_equal(pate_rdp.rdp_gaussian(-np.inf, 40.0, orders), 0.0)


HISTOGRAMS = st.integers(2, 12).flatmap(lambda c: st.lists(st.integers(0, 300), min_size=c, max_size=c))
SIGMAS = st.sampled_from([5.0, 20.0, 40.0, 100.0])


@hypothesis.settings(max_examples=150, deadline=None)
@hypothesis.given(votes=HISTOGRAMS, sigma=SIGMAS)
def test_data_dependent_never_exceeds_data_independent_and_unanimous_costs_least(votes, sigma):
  votes = np.array(votes)
  hypothesis.assume(votes.sum() > 0)
  orders = pate_rdp.DEFAULT_ORDERS
  logq = pate_rdp.logq_gaussian(votes, sigma)
  assert logq <= math.log1p(-1 / len(votes)) + 1e-15
  dependent = pate_rdp.rdp_gaussian(logq, sigma, orders)
  assert np.all(dependent >= 0)
  assert np.all(dependent <= pate_rdp.rdp_data_independent_gaussian(sigma, orders))
  unanimous = np.zeros_like(votes)
  unanimous[0] = votes.sum()
  cheapest = pate_rdp.rdp_gaussian(pate_rdp.logq_gaussian(unanimous, sigma), sigma, orders)
  assert np.all(cheapest <= dependent + 1e-15)
  test = pate_rdp.rdp_threshold(pate_rdp.logpr_answered(votes, votes.sum() * 0.6, sigma), sigma, orders)
  assert np.all(test <= pate_rdp.rdp_data_independent_threshold(sigma, orders))


def test_vote_rdp_expected_and_realised_answers():
  rng = np.random.default_rng(0)
  votes = rng.multinomial(250, [0.8] + [0.2 / 9] * 9, size=50)
  kwargs = {'aggregator': 'confident_gnmax', 'sigma2': 40.0, 'threshold': 200.0, 'sigma1': 150.0,
            'orders': [2.0, 8.0, 32.0]}
  expected = pate_rdp.vote_rdp(votes, **kwargs)
  p = np.exp(pate_rdp.logpr_answered(votes, 200.0, 150.0))
  assert expected['expected_answered'] == pytest.approx(p.sum())
  np.testing.assert_allclose(expected['data_independent'],
                             50 * np.array([2, 8, 32]) / (2 * 150**2) + p.sum() * np.array([2, 8, 32]) / 1600)
  mask = p > 0.5
  realised = pate_rdp.vote_rdp(votes, answered=mask, **kwargs)
  assert realised['expected_answered'] == mask.sum()
  assert np.all(realised['data_dependent'] <= realised['data_independent'])
  with pytest.raises(ValueError, match='cannot be analysed'):
    pate_rdp.vote_rdp(votes, aggregator='lnmax', sigma2=1.0)


def test_analyze_reports_the_fields_and_refuses_inconsistent_arguments():
  votes = np.random.default_rng(1).multinomial(250, [0.9] + [0.1 / 9] * 9, size=40)
  got = pate_rdp.analyze(votes, aggregator='gnmax', sigma2=40.0, delta=1e-5)
  assert got['expected_answered'] == 40 and got['teachers'] == 250 and got['classes'] == 10
  eps, order = rdp.compute_epsilon(list(pate_rdp.DEFAULT_ORDERS), list(pate_rdp.DEFAULT_ORDERS / 40**2 * 40),
                                   1e-5)
  assert (got['epsilon_data_independent'], got['order_data_independent']) == pytest.approx((eps, order))
  assert got['epsilon_data_dependent'] < got['epsilon_data_independent']
  with pytest.raises(ValueError, match='needs threshold and sigma1'):
    pate_rdp.analyze(votes, aggregator='confident_gnmax', sigma2=40.0, delta=1e-5)
  with pytest.raises(ValueError, match='leave threshold and sigma1 out'):
    pate_rdp.analyze(votes, aggregator='gnmax', sigma2=40.0, sigma1=1.0, delta=1e-5)


@pytest.mark.parametrize('gap, scale', [(0, 1.0), (1, 1.0), (3, 2.0), (10, 4.0)])
def test_lnmax_probabilities_of_two_classes_are_the_laplace_difference_tail(gap, scale):
  """Two classes: Pr[the smaller count wins] = (2 + g/b)/(4·e^{g/b}) (Papernot et al. 2017, Lemma 4)."""
  probs = pate_rdp.lnmax_answer_probabilities([5 + gap, 5], scale)
  tail = (2 + gap / scale) / (4 * math.exp(gap / scale))
  np.testing.assert_allclose(probs, [1 - tail, tail], atol=1e-7)


def test_lnmax_probabilities_sum_to_one():
  probs = pate_rdp.lnmax_answer_probabilities([7, 5, 5, 0], 2.0)
  assert probs.sum() == pytest.approx(1.0, abs=1e-7)
  assert probs[1] == pytest.approx(probs[2], abs=1e-9) and probs[0] > probs[1] > probs[3]


def test_doctests():
  assert doctest.testmod(pate_rdp).failed == 0


def test_analyze_with_the_realised_answers():
  votes = np.random.default_rng(2).multinomial(250, [0.7] + [0.3 / 9] * 9, size=30)
  mask = np.arange(30) % 3 == 0
  kwargs = {'aggregator': 'confident_gnmax', 'sigma2': 40.0, 'threshold': 200.0, 'sigma1': 150.0,
            'delta': 1e-5}
  got = pate_rdp.analyze(votes, answered=mask, smooth_sensitivity=True, **kwargs)
  assert got['expected_answered'] == 10
  orders = pate_rdp.DEFAULT_ORDERS
  independent = 30 * orders / (2 * 150**2) + 10 * orders / 40**2
  assert got['epsilon_data_independent'] == pytest.approx(pate_rdp.epsilon_from_rdp(orders, independent,
                                                                                     1e-5)[0])
  assert got['epsilon_data_dependent'] <= got['epsilon_data_independent']
  with pytest.raises(ValueError, match='at least|queries ≥ 1'):
    pate_rdp.analyze(votes[:0], **kwargs)
