"""Candidate subsampling (amplification by subsampling): the query mechanism 'subsampled_gaussian'.

Each round, every unlabeled candidate i is scored with a public probability p, by an independent coin
b_i ~ Bernoulli(p) drawn from no data. The released vector is v_i = b_i·clamp(s_i, 0, Δ) + N(0, (σΔ)²)
for every candidate (an unscored candidate enters with score 0 and its noise), and the k largest v_i are
kept (post-processing). The release is `gaussian_top_k.GaussianTopK(σ, sample_rate=p)`; this module adds
the choice of (p, σ) and its name.

**Privacy (proof sketch).** Adjacency as for the other mechanisms: one candidate's record against a
placeholder of score 0 in its public slot. Coordinates other than i do not depend on i's record, and the
coins are independent of all data, so i's privacy is that of v_i alone. With the record, v_i ~
(1 − p)·N(0, (σΔ)²) + p·N(s_i, (σΔ)²), |s_i| ≤ Δ; with the placeholder, v_i ~ N(0, (σΔ)²). That pair is
the Poisson-subsampled Gaussian mechanism with noise multiplier σ at rate p (add/remove adjacency), so
one round costs i `PoissonSampledDpEvent(p, GaussianDpEvent(σ))`, composed per round in the ledger with
training (RDP or PLD). The unscored candidates must stay in the race: leaving them out would reveal that
a pick was scored, and the event "i is picked" would then have probability ≤ p under both neighbours
without being diluted, which amplifies δ only, not ε.

**Budget.** `for_budget(ε_AL, T, δ)` gives the T rounds together the cost of T Laplace rounds of ε_AL / T
(as `GaussianTopK.for_budget`): for each p on a grid, σ(p) is calibrated so that T rounds at (p, σ(p))
cost exactly that, and the p of largest expected fidelity under the model below is kept.

**Fidelity model maximised** (`expected_fidelity`). Large pool (N → ∞ with k/N = q fixed), scores in
units of Δ drawn from a public distribution F on [0, 1] (default: uniform, i.e. the clamp range is the
scores' spread). The top-k threshold t solves (1 − p)·Φ̄(t/σ) + p·E_F[Φ̄((t − s)/σ)] = q, the exact top-2k
holds the scores above u = F⁻¹(1 − 2q), and a pick is in it with probability
f(p, σ) = [p·E_F[1{s ≥ u}·Φ̄((t − s)/σ)] + (1 − p)·2q·Φ̄(t/σ)] / q, against 2q for a uniform draw. An
unscored pick is a uniform draw (the second term), so only the scored share p of the pool can beat 2q:
subsampling pays off only when σ(p) falls faster than p. Under this model it rarely does (σ(p) ≈
1.2·p·σ(1) while the budget is small); `for_budget` then returns p = 1, the plain Gaussian top-k at the
σ of `GaussianTopK.for_budget`, and the plan shows it. `planner` does not pass N or k, so `for_budget`
models q = `QUERY_FRACTION`; `choose` takes the real q.
"""

import math
from typing import ClassVar

import numpy as np
from scipy import optimize
from scipy import stats

from dpal_jax.privacy import accounting
from dpal_jax.privacy import calibrate
from dpal_jax.privacy.mechanisms.gaussian_top_k import GaussianTopK
from dpal_jax.privacy.mechanisms.laplace_top_k import LaplaceTopK

QUERY_FRACTION = 0.1           # k/N modelled by `for_budget` (the planner passes neither k nor N)
RATES = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1)   # the rates p searched
_UNIFORM = (np.arange(512) + 0.5) / 512                       # quantiles of the default F


class SubsampledGaussianTopK(GaussianTopK):
  """`GaussianTopK` with a required candidate rate p, chosen with σ by `for_budget` / `choose`.

  Attributes:
    noise_multiplier: σ, the noise standard deviation over the clamp bound Δ.
    sample_rate: p, the Poisson rate at which a candidate is scored in a round (public).
  """
  name: ClassVar[str] = 'subsampled_gaussian'

  def __post_init__(self):
    super().__post_init__()
    if self.sample_rate is None:
      raise ValueError('a subsampled_gaussian query needs a sample_rate in (0, 1]')

  @classmethod
  def for_budget(cls, epsilon: float, rounds: int, delta: float,
                 accountant: str = 'rdp') -> 'SubsampledGaussianTopK':
    """`choose(...)` at the modelled query fraction `QUERY_FRACTION` (see the module docstring)."""
    return choose(epsilon, rounds, delta, accountant)


def round_budget(epsilon: float, rounds: int, delta: float, accountant: str = 'rdp') -> float:
  """ε at δ of `rounds` Laplace rounds of ε / T: what the T subsampled rounds may cost together."""
  laplace = LaplaceTopK.for_budget(epsilon, rounds, delta).dp_event()
  return accounting.epsilon([laplace] * rounds, delta, accountant)


def noise_for_rate(sample_rate: float, budget: float, rounds: int, delta: float,
                   accountant: str = 'rdp') -> float:
  """The smallest σ with which `rounds` rounds at candidate rate p cost at most `budget` at δ."""
  return calibrate.noise_multiplier(budget, delta, [(sample_rate, rounds)], accountant=accountant)


def expected_fidelity(sample_rate: float, noise_multiplier: float, query_fraction: float,
                      scores: np.ndarray | None = None) -> float:
  """f(p, σ) of the module docstring: the modelled share of picks in the exact top-2k.

  Args:
    sample_rate: p, the candidate rate.
    noise_multiplier: σ (noise std over Δ).
    query_fraction: q = k/N, in (0, 1/2].
    scores: equally weighted draws of F (scores over Δ, in [0, 1]); None: uniform on [0, 1].

  Returns:
    The modelled fidelity, in [0, 1]; 2q is a uniform draw's.

  >>> round(expected_fidelity(1.0, 1e-3, 0.1), 2), round(expected_fidelity(0.25, 1e-3, 0.1), 2)
  (1.0, 0.5)
  """
  if not 0 < query_fraction <= 0.5:
    raise ValueError(f'query_fraction must be in (0, 1/2], got {query_fraction}')
  s = _UNIFORM if scores is None else np.clip(np.asarray(scores, np.float64), 0.0, 1.0)
  p, sigma, q = float(sample_rate), float(noise_multiplier), float(query_fraction)
  excess = lambda t: (1 - p) * stats.norm.sf(t / sigma) + p * np.mean(stats.norm.sf((t - s) / sigma)) - q
  t = optimize.brentq(excess, -1.0 - 40 * sigma, 2.0 + 40 * sigma, xtol=1e-12)
  top = s >= np.quantile(s, 1 - 2 * q)
  scored = p * np.mean(top * stats.norm.sf((t - s) / sigma))
  unscored = (1 - p) * np.mean(top) * stats.norm.sf(t / sigma)
  return float(min(1.0, (scored + unscored) / q))


def choose(epsilon: float, rounds: int, delta: float, accountant: str = 'rdp',
           query_fraction: float = QUERY_FRACTION, scores: np.ndarray | None = None,
           rates=RATES) -> SubsampledGaussianTopK:
  """The (p, σ) of largest expected fidelity among `rates`, each σ(p) spending the query budget.

  Args:
    epsilon: ε_AL, the query budget of all rounds (spent as T Laplace rounds of ε_AL / T would be).
    rounds: T, the number of query rounds.
    delta: δ of the plan.
    accountant: 'rdp' or 'pld'; the rates are compared in RDP, the chosen σ is calibrated in this one.
    query_fraction, scores: the model's q = k/N and F (`expected_fidelity`).
    rates: the candidate rates p searched.

  Returns:
    The mechanism of every round.

  >>> m = choose(1.0, 3, 1e-5)           # a small budget: no subsampling, the plain Gaussian
  >>> m.sample_rate, round(m.noise_multiplier, 2)
  (1.0, 7.0)
  >>> m = choose(8.0, 4, 1 / 1500, query_fraction=0.01)   # a large budget, small queries
  >>> m.sample_rate, round(m.noise_multiplier, 2)
  (0.2, 0.58)

  *Formal guarantees*: whatever p is chosen, `rounds` rounds of the returned mechanism cost at most
  `round_budget(epsilon, rounds, delta, accountant)` in `accountant` (calibrated, then nudged to the
  side ε ≤ budget); the choice of p reads no data, only the public q and F.
  """
  if not 0 < epsilon < math.inf or rounds < 1:
    raise ValueError(f'choose needs 0 < epsilon < inf and rounds ≥ 1, got {epsilon}, {rounds}')
  budget_rdp = round_budget(epsilon, rounds, delta, 'rdp')
  value = lambda p: expected_fidelity(p, noise_for_rate(p, budget_rdp, rounds, delta), query_fraction,
                                      scores)
  best = max(rates, key=lambda p: (value(p), p))
  budget = budget_rdp if accountant == 'rdp' else round_budget(epsilon, rounds, delta, accountant)
  return SubsampledGaussianTopK(noise_for_rate(best, budget, rounds, delta, accountant), float(best))
