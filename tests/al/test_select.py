"""Top-k mechanisms: exactness at huge ε, uniformity at tiny ε, noise scales as the ledger accounts them."""

import numpy as np
import pytest

from dpal_jax.al import select
from dpal_jax.errors import ConfigError
from dpal_jax.privacy import query_events
from dpal_jax.privacy.plan import Query


def _sample_variance_within_3_se(noise, expected_var):
  squares = noise**2
  se = squares.std() / np.sqrt(len(squares))
  assert abs(squares.mean() - expected_var) < 3 * se, (squares.mean(), expected_var, se)


def test_exact_top_k_is_descending_with_nan_last():
  scores = np.array([0.3, np.nan, 0.9, 0.1, 0.9])
  np.testing.assert_array_equal(select.exact_top_k(scores, 4), [2, 4, 0, 3])
  assert select.exact_top_k(scores, 0).shape == (0,)
  with pytest.raises(ConfigError, match='al.query_sizes'):
    select.exact_top_k(scores, 6)


def test_huge_epsilon_picks_the_highest_scores():
  rng = np.random.default_rng(0)
  scores = rng.permutation(np.linspace(0, 0.8, 50))
  expected = np.argsort(-scores)[:7]
  np.testing.assert_array_equal(select.laplace_top_k(scores, 7, clamp=0.8, epsilon=1e9, rng=rng), expected)
  np.testing.assert_array_equal(
      select.gaussian_top_k(scores, 7, clamp=0.8, noise_multiplier=1e-9, rng=rng), expected)


def test_clamp_ties_scores_above_the_bound_and_nan_counts_as_zero():
  rng = np.random.default_rng(1)
  scores = np.array([0.5, 0.9, 1.5, np.nan, np.inf, -3.0])
  np.testing.assert_array_equal(select.clamp_scores(scores, 0.8), [0.5, 0.8, 0.8, 0.0, 0.8, 0.0])
  picks = {int(select.laplace_top_k(scores, 1, clamp=0.8, epsilon=1e6, rng=rng)[0]) for _ in range(200)}
  assert picks == {1, 2, 4}


def test_tiny_epsilon_is_nearly_uniform():
  rng = np.random.default_rng(2)
  scores = np.r_[np.zeros(5), np.full(5, 0.8)]
  trials, k = 4000, 3
  counts = np.zeros(10)
  for _ in range(trials):
    counts[select.laplace_top_k(scores, k, clamp=0.8, epsilon=1e-6, rng=rng)] += 1
  expected = trials * k / 10
  assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected * (1 - k / 10)))


def test_laplace_noise_scale_is_clamp_over_epsilon():
  rng = np.random.default_rng(3)
  clamp, epsilon, n = 0.8, 0.5, 200_000
  noise = select.laplace_release(np.full(n, 0.4), clamp=clamp, epsilon=epsilon, rng=rng) - 0.4
  scale = clamp / epsilon
  _sample_variance_within_3_se(noise, 2 * scale**2)
  assert abs(np.abs(noise).mean() - scale) < 3 * np.abs(noise).std() / np.sqrt(n)


def test_gaussian_noise_std_is_noise_multiplier_times_clamp():
  rng = np.random.default_rng(4)
  clamp, sigma, n = 1.0, 2.5, 200_000
  noise = select.gaussian_release(np.full(n, 0.3), clamp=clamp, noise_multiplier=sigma, rng=rng) - 0.3
  _sample_variance_within_3_se(noise, (sigma * clamp)**2)


def test_gaussian_sample_rate_keeps_a_poisson_subset_of_scores():
  rng = np.random.default_rng(5)
  n, q = 100_000, 0.3
  released = select.gaussian_release(np.ones(n), clamp=1.0, noise_multiplier=1e-6, sample_rate=q, rng=rng)
  kept = np.mean(released > 0.5)
  assert abs(kept - q) < 3 * np.sqrt(q * (1 - q) / n)
  assert np.all(np.isclose(released, 0, atol=1e-4) | np.isclose(released, 1, atol=1e-4))


def test_private_top_k_dispatches_on_the_query_mechanism():
  scores = np.linspace(0, 1, 20)
  rng = np.random.default_rng(6)
  top = list(range(19, 14, -1))
  assert list(select.private_top_k(scores, 5, clamp=1.0, query=Query(0, 'laplace', epsilon=1e9), rng=rng)) == top
  gaussian = Query(0, 'gaussian', noise_multiplier=1e-9)
  assert list(select.private_top_k(scores, 5, clamp=1.0, query=gaussian, rng=rng)) == top
  with pytest.raises(ConfigError, match='privacy.query_mechanism'):
    select.private_top_k(scores, 5, clamp=1.0, query=Query(0, 'exponential', epsilon=1.0), rng=rng)


def test_invalid_parameters_are_refused():
  rng = np.random.default_rng(7)
  with pytest.raises(ValueError, match='epsilon'):
    select.laplace_top_k(np.ones(3), 1, clamp=1.0, epsilon=0.0, rng=rng)
  with pytest.raises(ValueError, match='noise_multiplier'):
    select.gaussian_top_k(np.ones(3), 1, clamp=1.0, noise_multiplier=-1.0, rng=rng)
  with pytest.raises(ValueError, match='sample_rate'):
    select.gaussian_top_k(np.ones(3), 1, clamp=1.0, noise_multiplier=1.0, rng=rng, sample_rate=1.5)
  with pytest.raises(ValueError, match='clamp'):
    select.laplace_top_k(np.ones(3), 1, clamp=0.0, epsilon=1.0, rng=rng)


def test_noise_matches_the_accounted_events():
  """The ledger accounts a plan query through privacy.query_events; the noise here must be that event's."""
  clamp, n = 0.8, 200_000
  laplace = Query(0, 'laplace', epsilon=0.25)
  event = query_events.query_event(laplace)
  noise = select.laplace_release(np.zeros(n), clamp=clamp, epsilon=laplace.epsilon,
                                 rng=np.random.default_rng(8))
  _sample_variance_within_3_se(noise, 2 * (event.noise_multiplier * clamp)**2)  # Laplace(b): variance 2b²
  gaussian = Query(0, 'gaussian', noise_multiplier=1.7, sample_rate=0.2)
  event = query_events.query_event(gaussian)
  assert event.sampling_probability == gaussian.sample_rate
  noise = select.gaussian_release(np.zeros(n), clamp=clamp, noise_multiplier=gaussian.noise_multiplier,
                                  sample_rate=gaussian.sample_rate, rng=np.random.default_rng(9))
  _sample_variance_within_3_se(noise, (event.event.noise_multiplier * clamp)**2)
