import dp_accounting
import hypothesis
import numpy as np
import pytest
from dp_accounting import pld
from dp_accounting import rdp
from dp_accounting.rdp import rdp_privacy_accountant
from hypothesis import strategies as st

from dpal_jax.privacy import accounting


@pytest.mark.parametrize('q, sigma', [(0.1, 3.0), (0.5, 4.1), (0.3, 1.5), (0.01, 0.7), (0.9, 1.0),
                                      (1e-4, 10.0), (0.25, 0.5), (1.0, 2.0), (0.0, 1.0)])
def test_cached_rdp_vector_equals_dp_accounting(q, sigma):
  accounting.quiet_dp_accounting()
  expected = rdp_privacy_accountant._compute_rdp_poisson_subsampled_gaussian(q, sigma, accounting.ORDERS)
  got = accounting.poisson_gaussian_rdp(q, sigma)
  finite = np.isfinite(expected)
  assert np.array_equal(finite, np.isfinite(got))   # the same orders are excluded (series diverges)
  np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-9, atol=1e-300)


def test_pinned_reference_values():
  event = accounting.dpsgd_event(0.1, 3.0, 512)
  assert accounting.epsilon([event], 1e-6, 'rdp') == pytest.approx(4.0510, abs=5e-5)
  assert accounting.epsilon([event], 1e-6, 'pld', pld_discretization=1e-4) == pytest.approx(
      3.7697, abs=5e-5)


def test_cached_accountant_equals_fresh_rdp_accountant_on_a_mixed_history():
  events = [accounting.dpsgd_event(0.4096, 3.83, 74), dp_accounting.LaplaceDpEvent(2.0),
            accounting.dpsgd_event(0.155, 3.83, 258), dp_accounting.GaussianDpEvent(20.0),
            dp_accounting.PoissonSampledDpEvent(0.5, dp_accounting.GaussianDpEvent(5.0))]
  fresh = rdp.RdpAccountant().compose(dp_accounting.ComposedDpEvent(events))
  assert accounting.epsilon(events, 1e-5, 'rdp') == pytest.approx(fresh.get_epsilon(1e-5), rel=1e-9)
  fresh_pld = pld.PLDAccountant(value_discretization_interval=accounting.PLD_DISCRETIZATION)
  fresh_pld.compose(dp_accounting.ComposedDpEvent(events))
  assert accounting.epsilon(events, 1e-5, 'pld') == pytest.approx(fresh_pld.get_epsilon(1e-5))


def test_epsilon_from_rdp_equals_dp_accounting_conversion():
  for q, sigma, steps, delta in [(0.1, 3, 512, 1e-6), (0.5, 4.1, 60, 1e-5), (0.9, 0.5, 1000, 1e-3)]:
    vector = accounting.poisson_gaussian_rdp(q, sigma) * steps
    assert accounting.epsilon_from_rdp(vector, delta) == pytest.approx(
        rdp.compute_epsilon(accounting.ORDERS, vector, delta)[0], rel=1e-12)


def test_unlabeled_phase_and_empty_history_cost_nothing():
  assert isinstance(accounting.dpsgd_event(0.0, 1.0, 100), dp_accounting.NoOpDpEvent)
  assert accounting.epsilon([accounting.dpsgd_event(0.0, 1.0, 100)], 1e-5) == 0.0
  assert accounting.epsilon([], 1e-5, 'pld') == 0.0


_rate = st.floats(0.001, 0.6)
_sigma = st.floats(0.6, 8.0)


@hypothesis.settings(max_examples=25, deadline=None)
@hypothesis.given(q=_rate, sigma=_sigma, steps=st.integers(1, 500), extra=st.integers(1, 500))
def test_epsilon_grows_with_steps(q, sigma, steps, extra):
  eps = lambda s: accounting.epsilon([accounting.dpsgd_event(q, sigma, s)], 1e-5)
  assert eps(steps + extra) >= eps(steps)


@hypothesis.settings(max_examples=25, deadline=None)
@hypothesis.given(q=_rate, factor=st.floats(1.01, 1.6), sigma=_sigma, steps=st.integers(1, 500))
def test_epsilon_grows_with_rate(q, factor, sigma, steps):
  eps = lambda rate: accounting.epsilon([accounting.dpsgd_event(rate, sigma, steps)], 1e-5)
  assert eps(min(1.0, q * factor)) >= eps(q)


@hypothesis.settings(max_examples=25, deadline=None)
@hypothesis.given(q=_rate, sigma=_sigma, factor=st.floats(1.01, 2.0), steps=st.integers(1, 500))
def test_epsilon_falls_with_noise(q, sigma, factor, steps):
  eps = lambda s: accounting.epsilon([accounting.dpsgd_event(q, s, steps)], 1e-5)
  assert eps(sigma * factor) <= eps(sigma)


def test_pld_prefix_cache_never_mixes_histories():
  laplace = dp_accounting.LaplaceDpEvent(2.0)
  mixture = dp_accounting.dp_event.MixtureOfGaussiansDpEvent(2.0, [0.0, 1.0], [0.5, 0.5])
  first = accounting.epsilon([laplace], 1e-5, 'pld')
  both = accounting.epsilon([mixture, laplace], 1e-5, 'pld')
  fresh = pld.PLDAccountant(value_discretization_interval=accounting.PLD_DISCRETIZATION)
  fresh.compose(mixture).compose(laplace)
  assert both == pytest.approx(fresh.get_epsilon(1e-5)) and both > first
