"""Smooth sensitivity of PATE's data-dependent RDP: q₀, the neighbour bounds on q̃, local sensitivity
(at distance d) checked against real neighbouring histograms, SS_β's smoothness, GNSS, the release."""

import math

import hypothesis
import numpy as np
import pytest
from hypothesis import strategies as st
from scipy import special

from dpal_jax.privacy import pate_rdp
from dpal_jax.privacy import pate_smooth

SIGMA, ORDER, TEACHERS, CLASSES = 40.0, 13.0, 250, 10


def _neighbour(votes, rng):
  """One teacher changes its vote: one count −1, another +1."""
  votes = votes.copy()
  source = rng.choice(np.flatnonzero(votes > 0))
  target = rng.choice([j for j in range(len(votes)) if j != source])
  votes[source] -= 1
  votes[target] += 1
  return votes


def _beta(votes):
  return float(pate_smooth.beta_gnmax(pate_rdp.logq_gaussian(votes, SIGMA), SIGMA, ORDER))


def test_logq0_is_where_theorem6_meets_the_data_independent_bound():
  logq0 = pate_smooth.logq0_gnmax(SIGMA, ORDER)
  assert pate_rdp.theorem6_applies(logq0, SIGMA)
  assert float(pate_rdp.theorem6_bound(logq0, SIGMA, ORDER)) == pytest.approx(ORDER / SIGMA**2, rel=1e-9)
  assert float(pate_rdp.theorem6_bound(logq0 - 0.5, SIGMA, ORDER)) < ORDER / SIGMA**2
  below = np.linspace(logq0 - 20, logq0, 50)
  np.testing.assert_allclose(pate_smooth.beta_gnmax(below, SIGMA, ORDER),
                             pate_rdp.rdp_gaussian(below, SIGMA, [ORDER])[:, 0], rtol=1e-9)


def test_neighbour_bounds_are_the_erfc_formula_and_bracket_q():
  q = np.array([1e-6, 1e-3, 0.05, 0.3])
  inner = special.erfcinv(2 * q / (CLASSES - 1))
  for sign in (1, -1):
    want = np.minimum(1, (CLASSES - 1) / 2 * special.erfc(inner + sign / SIGMA))
    np.testing.assert_allclose(np.exp(pate_smooth._log_bound(np.log(q), SIGMA, CLASSES, sign)), want,
                               rtol=1e-9)
  assert np.isfinite(pate_smooth._log_bound(-5000.0, SIGMA, CLASSES, -1))   # log space: no underflow


@hypothesis.settings(max_examples=40, deadline=None)
@hypothesis.given(top=st.floats(0.3, 1.0), seed=st.integers(0, 2**31))
def test_local_sensitivity_at_distance_bounds_real_neighbours(top, seed):
  """Walk d random one-vote changes: |β(v_d+1) − β(v_d)| never exceeds the bound at distance d."""
  rng = np.random.default_rng(seed)
  votes = rng.multinomial(TEACHERS, [top] + [(1 - top) / (CLASSES - 1)] * (CLASSES - 1))
  gnmax = pate_smooth.local_sensitivity_by_distance_gnmax(votes, TEACHERS, SIGMA, ORDER)
  test = pate_smooth.local_sensitivity_by_distance_threshold(votes, TEACHERS, 200.0, 150.0, ORDER)
  assert np.all(np.diff(gnmax) >= 0) and np.all(np.diff(test) >= 0)

  def test_rdp(v):
    return float(pate_rdp.rdp_threshold(pate_rdp.logpr_answered(v, 200.0, 150.0), 150.0, [ORDER])[0])

  current = votes
  for d in range(30):
    step = _neighbour(current, rng)
    assert abs(_beta(step) - _beta(current)) <= gnmax[d] * (1 + 1e-9) + 1e-15
    assert abs(test_rdp(step) - test_rdp(current)) <= test[d] * (1 + 1e-9) + 1e-15
    current = step


@hypothesis.settings(max_examples=30, deadline=None)
@hypothesis.given(top=st.floats(0.3, 1.0), seed=st.integers(0, 2**31), beta=st.floats(0.005, 0.03))
def test_smooth_sensitivity_is_smooth_between_neighbours(top, seed, beta):
  rng = np.random.default_rng(seed)
  votes = rng.multinomial(TEACHERS, [top] + [(1 - top) / (CLASSES - 1)] * (CLASSES - 1))
  other = _neighbour(votes, rng)
  ss = [pate_smooth.smooth_sensitivity(
      beta, pate_smooth.local_sensitivity_by_distance_gnmax(v, TEACHERS, SIGMA, ORDER))
        for v in (votes, other)]
  assert ss[0] <= math.exp(beta) * ss[1] * (1 + 1e-9) + 1e-18
  assert ss[1] <= math.exp(beta) * ss[0] * (1 + 1e-9) + 1e-18


def test_gnss_rdp_is_theorem23_and_refuses_orders_out_of_range():
  got = pate_smooth.gnss_rdp(0.02, 5.0, ORDER)
  assert got == pytest.approx(ORDER * math.exp(0.04) / 25 + (-0.5 * math.log(1 - 0.52) + 0.26) / 12)
  with pytest.raises(ValueError, match='outside'):
    pate_smooth.gnss_rdp(0.05, 5.0, ORDER)   # 1/(2β) = 10 < λ


def test_conditions_hold_at_the_usual_orders_and_fail_at_high_ones():
  assert all(pate_smooth.conditions_hold(SIGMA, CLASSES, order) for order in (2.0, 8.0, 13.0, 27.5))
  assert not pate_smooth.conditions_hold(SIGMA, CLASSES, 50.0)   # C6: β(b_u) − β decreases near q₁


def test_release_of_confident_gnmax():
  votes = np.random.default_rng(3).multinomial(TEACHERS, [0.9] + [0.1 / 9] * 9, size=60)
  got = pate_rdp.analyze(votes, aggregator='confident_gnmax', sigma2=SIGMA, threshold=200.0, sigma1=150.0,
                         delta=1e-5, smooth_sensitivity=True)
  release = got['smooth_sensitivity']
  assert release['order'] == got['order_data_dependent'] and release['conditions_hold']
  order, beta = release['order'], release['beta']
  assert 0.3 / order <= beta < 0.5 / order
  assert release['sigma_ss'] == pytest.approx((order * math.exp(2 * beta)
                                               / release['expected_smooth_sensitivity'])**(1 / 3))
  assert got['epsilon_data_dependent'] < release['epsilon_with_smooth_sensitivity']
  fixed = pate_rdp.analyze(votes, aggregator='confident_gnmax', sigma2=SIGMA, threshold=200.0,
                           sigma1=150.0, delta=1e-5, smooth_sensitivity=True, beta=0.01)
  assert fixed['smooth_sensitivity']['beta'] == 0.01
  if beta > 0.01:   # SS_β falls with β
    assert (fixed['smooth_sensitivity']['expected_smooth_sensitivity']
            >= release['expected_smooth_sensitivity'])


def test_a_data_independent_setting_needs_no_release():
  votes = np.array([[10, 0, 0], [6, 4, 0]])   # 10 teachers at σ = 40: Theorem 6 never applies
  got = pate_rdp.analyze(votes, aggregator='gnmax', sigma2=SIGMA, delta=1e-5, smooth_sensitivity=True)
  assert got['epsilon_data_dependent'] == pytest.approx(got['epsilon_data_independent'])
  assert got['smooth_sensitivity']['beta'] == 0.0 and got['smooth_sensitivity']['sigma_ss'] is None


def test_sanitised_release_adds_smooth_sensitivity_noise_at_public_parameters():
  votes = np.random.default_rng(4).multinomial(TEACHERS, [0.9] + [0.1 / 9] * 9, size=20)
  rdp = pate_rdp.vote_rdp(votes, aggregator='gnmax', sigma2=SIGMA, orders=[ORDER])
  ls = pate_smooth.local_sensitivity_total(votes, rdp['weights'], order=ORDER, sigma2=SIGMA)
  each = [pate_smooth.local_sensitivity_by_distance_gnmax(v, TEACHERS, SIGMA, ORDER) for v in votes]
  np.testing.assert_allclose(ls, np.sum(each, axis=0))
  total, beta, sigma_ss = float(rdp['data_dependent'][0]), 0.03, 5.0
  rng = np.random.default_rng(0)
  draws = [pate_smooth.sanitised_release(total, ls, order=ORDER, beta=beta, sigma_ss=sigma_ss, delta=1e-5,
                                         rng=rng) for _ in range(2000)]
  noisy = np.array([d['noisy_rdp'] for d in draws])
  std = pate_smooth.smooth_sensitivity(beta, ls) * sigma_ss
  assert abs(noisy.mean() - total) < 4 * std / math.sqrt(2000)
  assert noisy.std() == pytest.approx(std, rel=0.1)
  assert draws[0]['gnss_rdp'] == pate_smooth.gnss_rdp(beta, sigma_ss, ORDER)
  eps = pate_rdp.epsilon_from_rdp([ORDER], [max(noisy[0], 0) + draws[0]['gnss_rdp']], 1e-5)[0]
  assert draws[0]['epsilon_sanitised'] == eps
