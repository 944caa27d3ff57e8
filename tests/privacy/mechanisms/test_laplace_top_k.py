"""Laplace top-k: its output distribution on small cases, its noise scale and its event, which must agree."""

import doctest
import math

import dp_accounting
import hypothesis
import numpy as np
import pytest
from hypothesis import strategies as st

from dpal_jax.privacy import accounting
from dpal_jax.privacy.mechanisms import laplace_top_k
from dpal_jax.privacy.mechanisms.laplace_top_k import LaplaceTopK
from tests.privacy.mechanisms.conftest import assert_frequency
from tests.privacy.mechanisms.conftest import assert_mean_within


def _p_first_wins(d: float, b: float) -> float:
  """P(s₀ + L₀ > s₁ + L₁) for L iid Laplace(b) and d = s₀ − s₁: the CDF of L₁ − L₀ at d."""
  tail = 0.5 * math.exp(-abs(d) / b) * (1 + abs(d) / (2 * b))
  return 1 - tail if d >= 0 else tail


@pytest.mark.parametrize('s0, s1, epsilon', [(0.8, 0.0, 1.0), (0.5, 0.3, 0.5), (0.1, 0.7, 2.0),
                                             (0.4, 0.4, 1.0)])
def test_top_1_of_two_has_its_exact_probability(s0, s1, epsilon, rng):
  mechanism, clamp, trials = LaplaceTopK(epsilon), 0.8, 20_000
  hits = sum(int(mechanism.top_k(np.array([s0, s1]), 1, clamp=clamp, rng=rng)[0] == 0)
             for _ in range(trials))
  assert_frequency(hits, trials, _p_first_wins(s0 - s1, clamp / epsilon))


@hypothesis.settings(max_examples=200, deadline=None)
@hypothesis.given(other=st.floats(0.0, 1.0), epsilon=st.floats(0.01, 10.0),
                  low=st.floats(0.0, 1.0), high=st.floats(0.0, 1.0))
def test_changing_one_candidate_moves_each_outcome_by_at_most_its_event(other, epsilon, low, high):
  """Pure DP of the exact pick distribution (k = 1 of 2): the likelihood ratio of either outcome between
  any two scores of candidate 0 in [0, Δ] is at most e^ε, the ε that dp-accounting gives its event."""
  event = LaplaceTopK(epsilon).dp_event()
  bound = accounting.epsilon([event], 1e-12)   # pure ε: the same at every δ
  b = 1.0 / epsilon
  for pick in (lambda d: _p_first_wins(d, b), lambda d: 1 - _p_first_wins(d, b)):
    p, q = pick(low - other), pick(high - other)
    assert math.log(max(p, q) / min(p, q)) <= bound * (1 + 1e-9) + 1e-12


def test_noise_is_laplace_of_scale_clamp_over_epsilon(rng):
  mechanism, clamp, n = LaplaceTopK(0.25), 0.8, 200_000
  noise = mechanism.release(np.full(n, 0.4), clamp=clamp, rng=rng) - 0.4
  event = mechanism.dp_event()
  scale = event.noise_multiplier * clamp            # dp-accounting's Laplace parameter × sensitivity
  assert scale == pytest.approx(clamp / mechanism.epsilon)
  assert_mean_within(noise**2, 2 * scale**2)        # Laplace(b): variance 2b²
  assert_mean_within(np.abs(noise), scale)          # and E|X| = b


def test_huge_epsilon_picks_the_highest_clamped_scores_and_tiny_is_uniform(rng):
  scores = rng.permutation(np.linspace(0, 0.8, 50))
  np.testing.assert_array_equal(LaplaceTopK(1e9).top_k(scores, 7, clamp=0.8, rng=rng),
                                np.argsort(-scores)[:7])
  clamped = np.array([0.5, 0.9, 1.5, np.nan, np.inf, -3.0])
  picks = {int(LaplaceTopK(1e6).top_k(clamped, 1, clamp=0.8, rng=rng)[0]) for _ in range(200)}
  assert picks == {1, 2, 4}
  counts, trials, k = np.zeros(10), 4000, 3
  for _ in range(trials):
    counts[LaplaceTopK(1e-6).top_k(np.r_[np.zeros(5), np.full(5, 0.8)], k, clamp=0.8, rng=rng)] += 1
  for c in counts:
    assert_frequency(int(c), trials, k / 10)


def test_events_and_budget_split():
  assert LaplaceTopK(0.5).dp_event() == dp_accounting.LaplaceDpEvent(2.0)
  assert LaplaceTopK(0.0).dp_event() == dp_accounting.NoOpDpEvent()
  assert LaplaceTopK(math.inf).dp_event() == dp_accounting.NonPrivateDpEvent()
  assert LaplaceTopK.for_budget(2.0, 4, 1e-5) == LaplaceTopK(0.5)
  assert LaplaceTopK(0.5).params() == {'epsilon': 0.5}


def test_invalid_parameters_are_refused(rng):
  with pytest.raises(ValueError, match='epsilon'):
    LaplaceTopK(-1.0)
  with pytest.raises(ValueError, match='epsilon'):
    LaplaceTopK(0.0).top_k(np.ones(3), 1, clamp=1.0, rng=rng)
  with pytest.raises(ValueError, match='clamp'):
    LaplaceTopK(1.0).top_k(np.ones(3), 1, clamp=0.0, rng=rng)


def test_doctests():
  assert doctest.testmod(laplace_top_k).failed == 0
