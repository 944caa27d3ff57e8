"""statistics: the one-run bound is 0 without signal and matches the paper's bound on worked counts."""

import doctest

import numpy as np
import pytest
import scipy.optimize
import scipy.special
import scipy.stats

from dpal_jax.audit import statistics


def test_doctests_pass():
  result = doctest.testmod(statistics)
  assert result.attempted >= 2 and result.failed == 0


def _paper_bound(guesses: int, correct: int, significance: float) -> float:
  """The largest ε with P[Binomial(r, e^ε/(1+e^ε)) ≥ v] ≤ α (Steinke et al. 2023, δ = 0), by root finding."""
  def excess(eps):
    return significance - scipy.stats.binom.sf(correct - 1, guesses, scipy.special.expit(eps))
  return scipy.optimize.brentq(excess, 1e-9, 20.0) if excess(1e-9) > 0 else 0.0


def test_scores_without_signal_give_zero():
  tied = statistics.lower_bound(np.zeros(500), np.zeros(500), threshold=0.0, significance=0.05,
                                delta=1e-5)
  assert (tied.epsilon, tied.guesses, tied.correct) == (0.0, 1000, 500)
  rng = np.random.default_rng(0)
  scores = rng.normal(size=1000)       # the coin below is independent of the scores
  included = rng.random(1000) < 0.5
  bound = statistics.lower_bound(scores[included], scores[~included], significance=0.05, delta=1e-5,
                                 threshold=statistics.top_threshold(scores, 100))
  assert bound.epsilon < 0.3 and bound.guesses == 100


@pytest.mark.parametrize('guesses, correct', [(100, 100), (100, 90), (500, 500), (50, 40)])
def test_bound_matches_the_paper_on_worked_counts(guesses, correct):
  in_scores = np.r_[np.ones(correct), np.zeros(400)]
  out_scores = np.r_[np.ones(guesses - correct), np.zeros(400)]
  bound = statistics.lower_bound(in_scores, out_scores, threshold=1.0, significance=0.05, delta=1e-12)
  assert (bound.guesses, bound.correct, bound.confidence) == (guesses, correct, 0.95)
  assert bound.epsilon == pytest.approx(_paper_bound(guesses, correct, 0.05), abs=1e-3)


def test_perfect_guesses_have_the_closed_form_and_cannot_reach_eight():
  # r correct of r: P = q^r, so ε̂ = logit(α^{1/r}); 100 → 3.49, 1000 (m = 1001) → 5.81 < 8.
  for r, expected in [(100, 3.4930), (1000, 5.8091)]:
    bound = statistics.lower_bound(np.ones(r), np.zeros(1), threshold=1.0, significance=0.05,
                                   delta=1e-12)
    assert bound.epsilon == pytest.approx(scipy.special.logit(0.05 ** (1 / r)), abs=1e-3)
    assert bound.epsilon == pytest.approx(expected, abs=1e-3)


def test_a_larger_delta_weakens_the_bound():
  strict, loose = (statistics.lower_bound(np.ones(100), np.zeros(100), threshold=1.0, significance=0.05,
                                          delta=d).epsilon for d in (1e-8, 1e-3))
  assert loose < strict


def test_bad_arguments_are_refused():
  with pytest.raises(ValueError, match='significance'):
    statistics.lower_bound(np.ones(2), np.zeros(2), threshold=1.0, significance=1.0, delta=1e-5)
  with pytest.raises(ValueError, match='guesses'):
    statistics.top_threshold(np.ones(3), 4)
