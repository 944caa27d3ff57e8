"""Clamped-score Gaussian top-k, optionally over Poisson-sampled candidates: the query mechanism 'gaussian'.

Scores are clamped to [0, Δ]; with a sample rate p each candidate's clamped score enters with probability
p (independently) and counts as 0 otherwise; every candidate then gets N(0, (σΔ)²) noise and the k largest
noisy scores are kept (post-processing). Changing one candidate's record moves one coordinate by at most Δ,
so one release is the Gaussian mechanism of noise multiplier σ for that candidate (`GaussianDpEvent(σ)`),
and with sampling its release is the mixture (1−p)·N(0, (σΔ)²) + p·N(s, (σΔ)²) against N(0, (σΔ)²), the
Poisson-subsampled Gaussian (`PoissonSampledDpEvent(p, GaussianDpEvent(σ))`). Adjacency as for the
Laplace mechanism (`laplace_top_k`): one candidate's record replaced, or a placeholder of score 0 in its
public slot.

A query budget ε_AL over T rounds: σ is chosen so that T Gaussian rounds composed in the plan's
accountant cost exactly what T Laplace rounds of ε_AL / T cost there (same ε at the same δ), so both
mechanisms spend the same query budget and leave training the same. Over many rounds the Gaussian
composes more tightly, so the same budget buys less noise per round.
"""

import dataclasses
from typing import ClassVar

import dp_accounting
import numpy as np

from dpal_jax.privacy import accounting
from dpal_jax.privacy import calibrate
from dpal_jax.privacy.mechanisms import top_k as top_k_lib
from dpal_jax.privacy.mechanisms.laplace_top_k import LaplaceTopK


@dataclasses.dataclass(frozen=True)
class GaussianTopK:
  """Top-k of clamped scores with N(0, (σ·Δ)²) noise each, candidates optionally Poisson-sampled.

  Attributes:
    noise_multiplier: σ, the noise standard deviation over the clamp bound Δ.
    sample_rate: p, the Poisson rate at which a candidate's score enters the release (None: always).
  """
  noise_multiplier: float
  sample_rate: float | None = None
  name: ClassVar[str] = 'gaussian'

  def __post_init__(self):
    if self.noise_multiplier is None or not self.noise_multiplier > 0:
      raise ValueError(f'a gaussian query needs noise_multiplier > 0, got {self.noise_multiplier}')
    if self.sample_rate is not None and not 0 < self.sample_rate <= 1:
      raise ValueError(f'the query sample_rate must be in (0, 1], got {self.sample_rate}')

  @classmethod
  def for_budget(cls, epsilon: float, rounds: int, delta: float,
                 accountant: str = 'rdp') -> 'GaussianTopK':
    """The σ at which `rounds` rounds cost what `rounds` Laplace rounds of ε / T cost (see above)."""
    laplace = [LaplaceTopK.for_budget(epsilon, rounds, delta).dp_event()] * rounds
    budget = accounting.epsilon(laplace, delta, accountant)
    return cls(calibrate.noise_multiplier(budget, delta, [(1.0, rounds)], accountant=accountant))

  def params(self) -> dict:
    """The noise parameters as plain data (plan.json, ledger.json); an unset sample rate is left out."""
    out = {'noise_multiplier': self.noise_multiplier}
    if self.sample_rate is not None:
      out['sample_rate'] = self.sample_rate
    return out

  def dp_event(self) -> dp_accounting.DpEvent:
    """What one release costs each candidate, as a dp-accounting event.

    >>> GaussianTopK(3.0, sample_rate=0.2).dp_event()
    PoissonSampledDpEvent(sampling_probability=0.2, event=GaussianDpEvent(noise_multiplier=3.0))
    """
    event = dp_accounting.GaussianDpEvent(float(self.noise_multiplier))
    if self.sample_rate is not None:
      event = dp_accounting.PoissonSampledDpEvent(float(self.sample_rate), event)
    return event

  def release(self, scores: np.ndarray, *, clamp: float, rng: np.random.Generator) -> np.ndarray:
    """The clamped scores (each kept with probability `sample_rate`, else 0) plus N(0, (σ·clamp)²) each."""
    clamped = top_k_lib.clamp_scores(scores, clamp)
    if self.sample_rate is not None:
      clamped = np.where(rng.random(clamped.shape) < self.sample_rate, clamped, 0.0)
    return clamped + rng.normal(0.0, self.noise_multiplier * clamp, size=clamped.shape)

  def top_k(self, scores: np.ndarray, k: int, *, clamp: float, rng: np.random.Generator) -> np.ndarray:
    """Indices of the k largest noisy scores, largest first.

    Args:
      scores: one score per candidate (any float; clamped to [0, clamp] first, NaN counts as 0).
      k: how many candidates to pick, 0 ≤ k ≤ len(scores).
      clamp: Δ, the score bound the noise is calibrated on (the strategy's `clamp`).
      rng: the source of the noise and of the candidate sampling.

    Returns:
      k distinct indices into `scores` (int64).

    Example:
      >>> GaussianTopK(1e-9).top_k(np.array([0.1, 0.7, 0.4]), 2, clamp=1.0,
      ...                          rng=np.random.default_rng(0)).tolist()
      [1, 2]

    *Formal guarantees*: for every candidate, the released ranking is at least as private as
    `dp_event()` — the Gaussian mechanism with noise multiplier σ, Poisson-subsampled at `sample_rate`
    when set — with respect to replacing that candidate's record (its score anywhere in [0, clamp]).
    Its (ε, δ) follows from composing that event in an accountant (the ledger does, per round).
    """
    top_k_lib.check_k(k, len(scores))
    return top_k_lib.exact_top_k(self.release(scores, clamp=clamp, rng=rng), k)
