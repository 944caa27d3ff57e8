"""Gaussian top-k: its output distribution on small cases (with and without candidate sampling), its
noise scale, its event, and the budget split that makes it cost what the Laplace rounds cost."""

import doctest
import math

import dp_accounting
import numpy as np
import pytest
from scipy import stats

from dpal_jax.privacy import accounting
from dpal_jax.privacy.mechanisms import gaussian_top_k
from dpal_jax.privacy.mechanisms.gaussian_top_k import GaussianTopK
from dpal_jax.privacy.mechanisms.laplace_top_k import LaplaceTopK
from tests.privacy.mechanisms.conftest import assert_frequency
from tests.privacy.mechanisms.conftest import assert_mean_within


def _p_first_wins(s0, s1, std, rate):
  """P(candidate 0 ranks first of two): each score kept with probability `rate` (else 0), N(0, std²)
  noise each; the difference of the noises is N(0, 2·std²)."""
  rate = 1.0 if rate is None else rate
  total = 0.0
  for keep0 in (0, 1):
    for keep1 in (0, 1):
      weight = (rate if keep0 else 1 - rate) * (rate if keep1 else 1 - rate)
      total += weight * stats.norm.cdf((keep0 * s0 - keep1 * s1) / (std * math.sqrt(2)))
  return total


@pytest.mark.parametrize('s0, s1, sigma, rate', [(1.0, 0.0, 1.0, None), (0.6, 0.4, 0.3, None),
                                                 (1.0, 0.2, 0.5, 0.3), (0.3, 0.9, 0.8, 0.7)])
def test_top_1_of_two_has_its_exact_probability(s0, s1, sigma, rate, rng):
  mechanism, clamp, trials = GaussianTopK(sigma, sample_rate=rate), 1.0, 20_000
  hits = sum(int(mechanism.top_k(np.array([s0, s1]), 1, clamp=clamp, rng=rng)[0] == 0)
             for _ in range(trials))
  assert_frequency(hits, trials, _p_first_wins(s0, s1, sigma * clamp, rate))


def test_noise_std_is_the_events_noise_multiplier_times_clamp(rng):
  mechanism, clamp, n = GaussianTopK(1.7, sample_rate=0.2), 0.8, 200_000
  event = mechanism.dp_event()
  assert event.sampling_probability == mechanism.sample_rate
  noise = mechanism.release(np.zeros(n), clamp=clamp, rng=rng)
  assert_mean_within(noise**2, (event.event.noise_multiplier * clamp)**2)


def test_sample_rate_keeps_a_poisson_subset_of_scores(rng):
  n, q = 100_000, 0.3
  released = GaussianTopK(1e-6, sample_rate=q).release(np.ones(n), clamp=1.0, rng=rng)
  assert_frequency(int(np.sum(released > 0.5)), n, q)
  assert np.all(np.isclose(released, 0, atol=1e-4) | np.isclose(released, 1, atol=1e-4))


def test_tiny_noise_is_the_exact_top_k(rng):
  scores = rng.permutation(np.linspace(0, 0.8, 50))
  np.testing.assert_array_equal(GaussianTopK(1e-9).top_k(scores, 7, clamp=0.8, rng=rng),
                                np.argsort(-scores)[:7])


def test_events():
  assert GaussianTopK(3.0).dp_event() == dp_accounting.GaussianDpEvent(3.0)
  assert GaussianTopK(3.0, sample_rate=0.2).dp_event() == (
      dp_accounting.PoissonSampledDpEvent(0.2, dp_accounting.GaussianDpEvent(3.0)))
  assert GaussianTopK(3.0).params() == {'noise_multiplier': 3.0}
  assert GaussianTopK(3.0, 0.2).params() == {'noise_multiplier': 3.0, 'sample_rate': 0.2}


@pytest.mark.parametrize('accountant', ['rdp', 'pld'])
def test_the_budget_split_costs_what_the_laplace_rounds_would(accountant):
  rounds, delta = 4, 1e-5
  gaussian = GaussianTopK.for_budget(2.0, rounds, delta, accountant)
  laplace = LaplaceTopK.for_budget(2.0, rounds, delta, accountant)
  assert accounting.epsilon([gaussian.dp_event()] * rounds, delta, accountant) == pytest.approx(
      accounting.epsilon([laplace.dp_event()] * rounds, delta, accountant), abs=1e-4)


def test_invalid_parameters_are_refused():
  with pytest.raises(ValueError, match='noise_multiplier'):
    GaussianTopK(-1.0)
  with pytest.raises(ValueError, match='sample_rate'):
    GaussianTopK(1.0, sample_rate=1.5)


def test_doctests():
  assert doctest.testmod(gaussian_top_k).failed == 0
