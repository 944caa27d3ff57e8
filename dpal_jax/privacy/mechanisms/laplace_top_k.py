"""Clamped-score Laplace top-k: the query mechanism 'laplace', and the dp-accounting event that pays for it.

Scores are clamped to [0, Δ] (`top_k.clamp_scores`), each candidate's clamped score s gets independent
Laplace noise of scale Δ/ε, and the k largest noisy scores are kept. A candidate's score depends only on
that candidate and on the current model (itself a DP release of the labeled data), so changing one
candidate's record moves one coordinate of the released vector by at most Δ: the Laplace mechanism of
sensitivity Δ, pure ε-DP for that candidate (`LaplaceDpEvent(1/ε)`: dp-accounting's Laplace parameter is
the noise scale over the sensitivity, here (Δ/ε)/Δ). The top-k is post-processing. Adjacency replaces one
candidate's record (any score in [0, Δ]) or, for add/remove, puts a placeholder of score 0 in its slot:
the slot set (the pool's indices) is public. No floating-point-attack mitigation (snapping).

A query budget ε_AL spread over T rounds gives every round ε_AL / T (the original's split).
"""

import dataclasses
import math
from typing import ClassVar

import dp_accounting
import numpy as np

from dpal_jax.privacy.mechanisms import top_k as top_k_lib


@dataclasses.dataclass(frozen=True)
class LaplaceTopK:
  """Top-k of clamped scores with Laplace(Δ/ε) noise each; ε per scored candidate per round.

  Attributes:
    epsilon: the pure ε each candidate spends in one release (the sensitivity Δ is folded into the noise
      scale). 0 costs nothing (and releases nothing); inf is the exact, non-private top-k.
  """
  epsilon: float
  name: ClassVar[str] = 'laplace'

  def __post_init__(self):
    if self.epsilon is None or not self.epsilon >= 0:
      raise ValueError(f'a laplace query needs epsilon >= 0, got {self.epsilon}')

  @classmethod
  def for_budget(cls, epsilon: float, rounds: int, delta: float,
                 accountant: str = 'rdp') -> 'LaplaceTopK':  # pylint: disable=unused-argument
    """The mechanism of each of `rounds` rounds that together spend the query budget `epsilon`: ε / T."""
    return cls(epsilon / rounds)

  def params(self) -> dict:
    """The noise parameters as plain data (plan.json, ledger.json)."""
    return {'epsilon': self.epsilon}

  def dp_event(self) -> dp_accounting.DpEvent:
    """What one release costs each scored candidate, as a dp-accounting event.

    >>> LaplaceTopK(0.5).dp_event()
    LaplaceDpEvent(noise_multiplier=2.0)
    """
    if self.epsilon == 0:
      return dp_accounting.NoOpDpEvent()
    if math.isinf(self.epsilon):
      return dp_accounting.NonPrivateDpEvent()
    return dp_accounting.LaplaceDpEvent(1.0 / self.epsilon)

  def release(self, scores: np.ndarray, *, clamp: float, rng: np.random.Generator) -> np.ndarray:
    """The clamped scores plus Laplace(clamp/ε) noise each (float64)."""
    if not self.epsilon > 0:
      raise ValueError(f'the query epsilon must be positive, got {self.epsilon}')
    clamped = top_k_lib.clamp_scores(scores, clamp)
    return clamped + rng.laplace(0.0, clamp / self.epsilon, size=clamped.shape)

  def top_k(self, scores: np.ndarray, k: int, *, clamp: float, rng: np.random.Generator) -> np.ndarray:
    """Indices of the k largest noisy scores, largest first.

    Args:
      scores: one score per candidate (any float; clamped to [0, clamp] first, NaN counts as 0).
      k: how many candidates to pick, 0 ≤ k ≤ len(scores).
      clamp: Δ, the score bound the noise is calibrated on (the strategy's `clamp`).
      rng: the source of the noise (seed it from OS entropy for a real release).

    Returns:
      k distinct indices into `scores` (int64).

    Example:
      >>> LaplaceTopK(1e9).top_k(np.array([0.1, 0.7, 0.4]), 2, clamp=0.8,
      ...                        rng=np.random.default_rng(0)).tolist()
      [1, 2]

    *Formal guarantees*: for every candidate, the released ranking is `epsilon`-DP with respect to
    replacing that candidate's record (its score anywhere in [0, clamp]), whatever the other scores;
    `dp_event()` is exactly that cost. It says nothing about candidates scored by other rounds: each round
    is charged separately in the ledger.
    """
    top_k_lib.check_k(k, len(scores))
    return top_k_lib.exact_top_k(self.release(scores, clamp=clamp, rng=rng), k)
