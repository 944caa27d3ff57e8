"""From canary scores to an ε lower bound: the one-run audit of Steinke, Nasr and Jagielski (2023).

m canaries are each included independently with probability ½ (a public coin S ∈ {0, 1}^m). After the
release the auditor scores every canary, guesses "included" for the r highest scores (one-sided, k₋ = 0)
and counts the correct guesses v. If the mechanism is (ε, δ)-DP with respect to each canary, then for every
guessing rule that reads only the release, P[v ≥ v₀ | r guesses] ≤ P[Binomial(r, e^ε / (1 + e^ε)) ≥ v₀]
plus a δ term (their Theorem 3.1). The audited lower bound at significance α is the largest ε that this
inequality rejects at level α: with probability ≥ 1 − α the true ε of the mechanism is at least the bound.

The statistics are `jax_privacy.auditing.CanaryScoreAuditor.epsilon_one_run` (never re-derived here) at an
explicit threshold: the r-th highest score, r fixed before the run, so the guesses are the paper's top-r
guesses. With δ ≈ 0, r perfect guesses certify at most logit(α^{1/r}) ≈ log(r / log(1/α)): for α = 0.05
that is 3.49 for r = 100, 5.11 for r = 500 and 5.81 for r = 1000, so a one-run audit with about 1000
canaries can never reach a claimed ε = 8, however broken the mechanism (use ε ≈ 1 to test an engine).
"""

import dataclasses

import numpy as np
from jax_privacy import auditing


@dataclasses.dataclass(frozen=True)
class Bound:
  """An audited lower bound: `epsilon` holds with probability ≥ `confidence`; `guesses` canaries were
  guessed "included" (score ≥ `threshold`), `correct` of them were."""
  epsilon: float
  confidence: float
  guesses: int
  correct: int
  threshold: float

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)


def top_threshold(scores: np.ndarray, guesses: int) -> float:
  """The `guesses`-th highest score (guess "included" for every canary scoring at least this).

  >>> top_threshold(np.array([0.1, 0.9, 0.5, 0.7]), 2)
  0.7
  """
  scores = np.asarray(scores, np.float64)
  if not 1 <= guesses <= len(scores):
    raise ValueError(f'guesses ({guesses}) must be between 1 and the number of canaries ({len(scores)})')
  return float(np.sort(scores)[::-1][guesses - 1])


def lower_bound(in_scores: np.ndarray, out_scores: np.ndarray, *, threshold: float, significance: float,
                delta: float) -> Bound:
  """The ε lower bound of guessing "included" for every canary whose score is ≥ `threshold`.

  Args:
    in_scores: scores of the canaries the coin included (held-in); higher should mean "included".
    out_scores: scores of the canaries it left out (held-out).
    threshold: fixed before the scores are seen, or a function of all m scores without the coin (such as
      `top_threshold`), never chosen by looking at which canaries were included.
    significance: α in (0, 1); the bound holds with probability ≥ 1 − α.
    delta: the δ of the claim being audited, in (0, 1].

  Returns:
    The Bound: ε̂ (0 when the guesses do not reject ε = 0), its confidence 1 − α, guesses and correct.

  Example:
    >>> b = lower_bound(np.ones(50), np.zeros(50), threshold=1.0, significance=0.05, delta=1e-5)
    >>> (b.guesses, b.correct, round(b.epsilon, 2))
    (50, 50, 2.78)

  *Formal guarantees*: if the release is (ε, δ)-DP with respect to each canary's inclusion and the coins
  are independent fair coins, then P[ε̂ > ε] ≤ α (Steinke, Nasr, Jagielski 2023, Theorem 3.1 with
  k₋ = 0). The converse does not hold: ε̂ ≤ ε says only that this attack did not find a violation.
  """
  in_scores, out_scores = np.asarray(in_scores, np.float64), np.asarray(out_scores, np.float64)
  if not 0 < significance < 1:
    raise ValueError(f'significance ({significance}) must be in (0, 1)')
  correct = int(np.sum(in_scores >= threshold))
  guesses = correct + int(np.sum(out_scores >= threshold))
  epsilon = auditing.CanaryScoreAuditor(in_scores, out_scores).epsilon_one_run(
      significance, delta, threshold_strategy=auditing.Explicit(threshold))
  return Bound(epsilon=float(epsilon), confidence=1 - significance, guesses=guesses, correct=correct,
               threshold=float(threshold))
