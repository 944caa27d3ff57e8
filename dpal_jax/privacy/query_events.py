"""Private selection rounds as dp-accounting events, and the per-round parameters for a query budget.

A query releases one noisy score per unlabeled candidate and keeps the top-k (post-processing). A
candidate's score depends only on that candidate and on the current model (itself a DP output), so
each round costs every unlabeled candidate one run of the mechanism on its own score:
- 'laplace': clamp to [0, Δ], add Laplace(Δ/ε_q) → pure ε_q-DP, `LaplaceDpEvent(1/ε_q)`.
- 'gaussian': clamp to [0, Δ], add N(0, (σ_q·Δ)²) → `GaussianDpEvent(σ_q)`; when candidates are
  scored with Poisson probability p, `PoissonSampledDpEvent(p, GaussianDpEvent(σ_q))`.
The total query budget ε_AL is spread over the T rounds as in the original: ε_q = ε_AL / T for
Laplace. For the Gaussian, σ_q is chosen so that the T rounds composed in the plan's accountant cost
exactly what T Laplace rounds of ε_AL / T cost there (same ε at the same δ), so both mechanisms spend
the same query budget and the same training budget is left.
"""

import math

import dp_accounting

from dpal_jax import validate
from dpal_jax.privacy import accounting
from dpal_jax.privacy import calibrate
from dpal_jax.privacy.plan import Query

MECHANISMS = ('laplace', 'gaussian')


def query_event(query: Query) -> dp_accounting.DpEvent:
  """The dp-accounting event one unlabeled candidate incurs in `query`."""
  if query.mechanism == 'laplace':
    if query.epsilon is None or query.epsilon < 0:
      raise ValueError(f'a laplace query needs epsilon >= 0, got {query.epsilon}')
    if query.epsilon == 0:
      return dp_accounting.NoOpDpEvent()
    if math.isinf(query.epsilon):
      return dp_accounting.NonPrivateDpEvent()
    return dp_accounting.LaplaceDpEvent(1.0 / query.epsilon)
  if query.mechanism == 'gaussian':
    if query.noise_multiplier is None or query.noise_multiplier <= 0:
      raise ValueError(f'a gaussian query needs noise_multiplier > 0, got {query.noise_multiplier}')
    event = dp_accounting.GaussianDpEvent(float(query.noise_multiplier))
    if query.sample_rate is not None:
      event = dp_accounting.PoissonSampledDpEvent(float(query.sample_rate), event)
    return event
  raise validate.unknown('privacy.query_mechanism', query.mechanism, MECHANISMS)


def make_queries(mechanism: str, epsilon_al: float, num_queries: int, delta: float,
                 accountant: str = 'rdp') -> tuple[Query, ...]:
  """The T = `num_queries` rounds (after phases 0..T-1) spending the query budget `epsilon_al`."""
  validate.choice('privacy.query_mechanism', mechanism, MECHANISMS)
  if num_queries == 0:
    return ()
  per_round = epsilon_al / num_queries
  if mechanism == 'laplace':
    return tuple(Query(k, 'laplace', epsilon=per_round) for k in range(num_queries))
  laplace = [dp_accounting.LaplaceDpEvent(1.0 / per_round)] * num_queries
  budget = accounting.epsilon(laplace, delta, accountant)
  sigma = calibrate.noise_multiplier(budget, delta, [(1.0, num_queries)], accountant=accountant)
  return tuple(Query(k, 'gaussian', noise_multiplier=sigma) for k in range(num_queries))
