"""PATE privacy analysis on the host (NumPy, SciPy, dp-accounting; no JAX). See docs/pate_analysis.md.

n teachers, trained on disjoint partitions, vote; n_j is the number of votes for class j (Σ_j n_j = n,
C classes). The accounting unit is a partition: changing anything in one partition changes at most one
teacher's vote, so one count falls by 1 and another rises by 1.

Data-independent costs (the guaranteed ε; each an exact dp-accounting event):
- GNMax answer argmax_j(n_j + N(0, σ₂²)): post-processing of the noisy histogram, whose L2 sensitivity
  is √2, so it is the Gaussian mechanism with noise multiplier σ₂/√2: RDP α/σ₂² (Papernot et al. 2018,
  Prop. 8).
- Threshold test max_j n_j + N(0, σ₁²) ≥ T (Confident-GNMax, Alg. 1) or max_j(n_j − M·p_j) + N(0, σ₁²) ≥ T
  (Interactive-GNMax, Alg. 2; p is the public student's prediction): the tested value moves by at most 1,
  the Gaussian mechanism with multiplier σ₁: RDP α/(2σ₁²).
- LNMax answer argmax_j(n_j + Lap(b)) (Papernot et al. 2017): post-processing of the noisy histogram; a
  neighbour moves two coordinates by 1 each, so the histogram is two independent sensitivity-1 Laplace
  mechanisms of scale b: `SelfComposedDpEvent(LaplaceDpEvent(b), 2)`, pure ε = 2/b (the 2017 paper's 2γ
  at γ = 1/b), and tighter in RDP and PLD than one Laplace of L1 sensitivity 2.

Data-dependent RDP of one GNMax answer (Papernot et al. 2018, Theorem 6 with Prop. 7 and 10): with
q̃ = min(Σ_{j≠j*} Pr[N(0, 2σ²) ≥ n_{j*} − n_j], 1 − 1/C) ≥ Pr[answer ≠ j*], μ₂ = σ·sqrt(log 1/q̃),
μ₁ = μ₂ + 1, ε_i = μ_i/σ², and for every order λ < μ₁ when μ₂ > 1, q̃·e^{ε₂} < 1 and
q̃ ≤ e^{(μ₂−1)ε₂} / (μ₁/(μ₁−1) · μ₂/(μ₂−1))^{μ₂}:

  RDP(λ) ≤ min(λ/σ², 1/(λ−1) · log((1−q̃)·A^{λ−1} + q̃·B^{λ−1})),
  A = (1−q̃) / (1 − (q̃·e^{ε₂})^{(μ₂−1)/μ₂}),  B = e^{ε₁} / q̃^{1/(μ₁−1)};

λ/σ² (data-independent) wherever a condition fails; 0 when q̃ = 0 (the answer is fixed). The threshold
test is the same bound at σ = √2·σ₁ with q = min(Pr[answered], 1 − Pr[answered]) (a two-outcome
mechanism), Pr[answered] = Pr[N(0, σ₁²) ≥ T − round(max_j n_j)].

Expected-answered accounting (the 2018 analysis scripts): every query pays its threshold test, the GNMax
answer is paid in expectation, Pr[answered]·RDP_answer; `expected_answered` = Σ Pr[answered]. These
totals depend on the votes: they are reported, never a guarantee. The guarantee of a run is
`data_independent_epsilon` of the realised counts (the ledger's `PateRound`).
"""

import math

import dp_accounting
import numpy as np
from dp_accounting import rdp as dp_rdp
from scipy import integrate
from scipy import special
from scipy import stats

from dpal_jax.privacy import accounting

AGGREGATORS = ('lnmax', 'gnmax', 'confident_gnmax', 'interactive_gnmax')
THRESHOLDED = ('confident_gnmax', 'interactive_gnmax')
# The 2018 analysis scripts' orders: 2 to 100 in steps of 0.5, then 100 log-spaced orders up to 500.
DEFAULT_ORDERS = np.concatenate((np.arange(2, 100.5, 0.5), np.logspace(2, math.log10(500), 100)))


# Data-independent events.

def gnmax_answer_event(sigma2: float) -> dp_accounting.DpEvent:
  """One GNMax answer at vote noise σ₂: `GaussianDpEvent(σ₂/√2)` (RDP α/σ₂²).

  >>> gnmax_answer_event(40.0)
  GaussianDpEvent(noise_multiplier=28.2842712474619)
  """
  return dp_accounting.GaussianDpEvent(float(sigma2) / 2**0.5)


def threshold_event(sigma1: float) -> dp_accounting.DpEvent:
  """One threshold test at noise σ₁ (sensitivity 1): `GaussianDpEvent(σ₁)` (RDP α/(2σ₁²))."""
  return dp_accounting.GaussianDpEvent(float(sigma1))


def lnmax_answer_event(scale: float) -> dp_accounting.DpEvent:
  """One LNMax answer at Laplace scale b on every count: two sensitivity-1 Laplace(b), pure ε = 2/b."""
  return dp_accounting.SelfComposedDpEvent(dp_accounting.LaplaceDpEvent(float(scale)), 2)


def round_event(aggregator: str, answered: int, tested: int = 0, *, sigma1=None, sigma2=None,
                laplace_scale=None) -> dp_accounting.DpEvent:
  """`tested` threshold tests ∘ `answered` answers of `aggregator`, as one dp-accounting event.

  The tests are paid only by the thresholded aggregators ('confident_gnmax', 'interactive_gnmax');
  'lnmax' answers with `laplace_scale`, the others with GNMax at `sigma2`. NoOp when nothing ran.
  """
  parts = []
  if tested:
    parts.append(dp_accounting.SelfComposedDpEvent(threshold_event(sigma1), int(tested)))
  if answered:
    answer = lnmax_answer_event(laplace_scale) if aggregator == 'lnmax' else gnmax_answer_event(sigma2)
    parts.append(dp_accounting.SelfComposedDpEvent(answer, int(answered)))
  return dp_accounting.ComposedDpEvent(parts) if parts else dp_accounting.NoOpDpEvent()


def data_independent_epsilon(num_answered: int, num_tested: int, *, aggregator: str, sigma1=None,
                             sigma2=None, delta: float, accountant: str = 'rdp',
                             laplace_scale=None) -> float:
  """The guaranteed ε at `delta` of `num_tested` threshold tests and `num_answered` answers.

  Args:
    num_answered: the answers released (for the thresholded aggregators, the queries that passed).
    num_tested: the threshold tests run (must be 0 for 'lnmax' and 'gnmax').
    aggregator: one of `AGGREGATORS`.
    sigma1, sigma2, laplace_scale: the noise of the test, of a GNMax answer, of an LNMax answer.
    delta: the target δ.
    accountant: 'rdp' or 'pld' (a fresh dp-accounting accountant, `privacy.accounting`).

  Returns:
    ε of the composition of the round's events (`round_event`).

  >>> round(data_independent_epsilon(286, 640, aggregator='confident_gnmax', sigma1=150, sigma2=40,
  ...                                delta=1e-5), 3)
  2.758

  *Formal guarantees*: the aggregator's releases (the ⊥/answer decisions and the answers) are
  (ε, δ)-DP with respect to changing one teacher partition, whatever the votes.
  """
  if aggregator not in AGGREGATORS:
    raise ValueError(f'aggregator {aggregator!r} is unknown; choose one of {AGGREGATORS}')
  if aggregator not in THRESHOLDED and num_tested:
    raise ValueError(f'{aggregator} runs no threshold test; pass num_tested=0')
  event = round_event(aggregator, num_answered, num_tested, sigma1=sigma1, sigma2=sigma2,
                      laplace_scale=laplace_scale)
  return accounting.epsilon([event], delta, accountant)


# Data-dependent RDP (Theorem 6).

def _log1mexp(x):
  """log(1 − e^x) for x ≤ 0, stable at both ends."""
  x = np.asarray(x, dtype=np.float64)
  with np.errstate(divide='ignore'):
    return np.where(x < -0.693, np.log1p(-np.exp(np.minimum(x, 0))), np.log(-np.expm1(x)))


def logq_gaussian(votes, sigma: float) -> np.ndarray:
  """log q̃ per row of `votes` [queries, C] (or one row [C]): Prop. 7's union bound, capped at 1 − 1/C.

  q̃ = Σ_{j≠j*} Pr[N(0, 2σ²) ≥ n_{j*} − n_j] with j* the first argmax, an upper bound on
  Pr[argmax_j(n_j + N(0, σ²)) ≠ j*].
  """
  votes = np.asarray(votes, dtype=np.float64)
  rows = np.atleast_2d(votes)
  top = np.argmax(rows, axis=1)
  gaps = rows[np.arange(len(rows)), top][:, None] - rows
  tails = stats.norm.logsf(gaps, scale=math.sqrt(2) * sigma)
  tails[np.arange(len(rows)), top] = -np.inf
  logq = np.minimum(special.logsumexp(tails, axis=1), math.log1p(-1 / rows.shape[1]))
  return logq if votes.ndim == 2 else logq[0]


def rdp_data_independent_gaussian(sigma: float, orders) -> np.ndarray:
  """λ/σ²: the RDP of one GNMax answer at noise σ, whatever the votes (Prop. 8)."""
  return np.asarray(orders, dtype=np.float64) / sigma**2


def theorem6_applies(logq, sigma: float) -> np.ndarray:
  """Whether Theorem 6's conditions on q̃ hold at μ₂ = σ·sqrt(log 1/q̃), μ₁ = μ₂ + 1 (per entry of logq).

  They are μ₂ > 1, q̃·e^{ε₂} < 1 and log q̃ ≤ (μ₂−1)·ε₂ − μ₂·log(μ₁/(μ₁−1) · μ₂/(μ₂−1)); the order
  condition λ < μ₁ is checked per order by `rdp_gaussian`.
  """
  logq = np.asarray(logq, dtype=np.float64)
  with np.errstate(divide='ignore', invalid='ignore'):
    mu2 = sigma * np.sqrt(-logq)
    mu1 = mu2 + 1
    eps2 = mu2 / sigma**2
    limit = (mu2 - 1) * eps2 - mu2 * (np.log1p(1 / (mu1 - 1)) + np.log1p(1 / (mu2 - 1)))
    return (mu2 > 1) & (-logq > eps2) & (logq <= limit) & np.isfinite(logq)


def theorem6_bound(logq, sigma: float, orders) -> np.ndarray:
  """Theorem 6's expression at μ₂ = σ·sqrt(log 1/q̃), μ₁ = μ₂ + 1, without its conditions.

  logq broadcasts against orders; valid only where `theorem6_applies` and λ < μ₁.
  """
  logq = np.asarray(logq, dtype=np.float64)
  orders = np.asarray(orders, dtype=np.float64)
  with np.errstate(divide='ignore', invalid='ignore', over='ignore'):
    mu2 = sigma * np.sqrt(-logq)
    mu1 = mu2 + 1
    eps1, eps2 = mu1 / sigma**2, mu2 / sigma**2
    log1q = _log1mexp(logq)
    log_a = (orders - 1) * (log1q - _log1mexp((logq + eps2) * (1 - 1 / mu2)))
    log_b = (orders - 1) * (eps1 - logq / (mu1 - 1))
    return np.logaddexp(log1q + log_a, logq + log_b) / (orders - 1)


def rdp_gaussian(logq, sigma: float, orders) -> np.ndarray:
  """Data-dependent RDP of one GNMax answer at noise σ and bound log q̃ (Theorem 6), at each order.

  Args:
    logq: log q̃, a scalar or an array [queries] (`logq_gaussian`).
    sigma: the GNMax noise.
    orders: RDP orders λ > 1.

  Returns:
    [orders] (scalar logq) or [queries, orders]: min(λ/σ², Theorem 6) where its conditions hold,
    λ/σ² where they fail, 0 where q̃ = 0.
  """
  logq = np.asarray(logq, dtype=np.float64)
  orders = np.asarray(orders, dtype=np.float64)
  if np.any(orders <= 1) or np.any(logq > 0) or sigma <= 0:
    raise ValueError('rdp_gaussian needs orders > 1, log q̃ ≤ 0 and σ > 0')
  lq = logq[..., None]
  independent = np.broadcast_to(rdp_data_independent_gaussian(sigma, orders), lq.shape[:-1] + orders.shape)
  applies = theorem6_applies(lq, sigma) & (sigma * np.sqrt(-lq) + 1 > orders)
  dependent = np.where(applies, theorem6_bound(lq, sigma, orders), np.inf)
  return np.where(np.isneginf(lq), 0.0, np.minimum(independent, dependent))


def logpr_answered(votes, threshold: float, sigma1: float) -> np.ndarray:
  """log Pr[round(max_j n_j) + N(0, σ₁²) ≥ T] per row of `votes` (one row: a scalar)."""
  votes = np.asarray(votes, dtype=np.float64)
  return stats.norm.logsf(threshold - np.round(np.max(votes, axis=-1)), scale=sigma1)


def rdp_data_independent_threshold(sigma1: float, orders) -> np.ndarray:
  """λ/(2σ₁²): the RDP of one threshold test (sensitivity 1), whatever the votes."""
  return rdp_data_independent_gaussian(math.sqrt(2) * sigma1, orders)


def rdp_threshold(logpr, sigma1: float, orders) -> np.ndarray:
  """Data-dependent RDP of one threshold test: Theorem 6 at σ = √2·σ₁, q = min(Pr[ans.], 1 − Pr[ans.])."""
  logpr = np.asarray(logpr, dtype=np.float64)
  return rdp_gaussian(np.minimum(logpr, _log1mexp(logpr)), math.sqrt(2) * sigma1, orders)


# Accounting over a votes matrix.

def vote_rdp(votes, *, aggregator: str, sigma2: float, threshold=None, sigma1=None, orders=None,
             answered=None) -> dict:
  """Total RDP of GNMax or Confident-GNMax over the rows of `votes` [queries, C], at every order.

  Args:
    votes: vote counts, one query per row.
    aggregator: 'gnmax' (every query answered) or 'confident_gnmax' (a threshold test on every query).
    sigma2, threshold, sigma1: the aggregator's noise and threshold.
    orders: RDP orders (default `DEFAULT_ORDERS`).
    answered: None: the expected-answered accounting, each answer paid with weight Pr[answered];
      or a boolean mask [queries]: the answers actually released (the realised accounting).

  Returns:
    {'orders', 'data_dependent', 'data_independent' (RDP vectors over orders), 'expected_answered',
    'weights' (each query's answer weight), 'logq' (log q̃ per query), 'logpr_answered' (None for
    'gnmax')}. Both vectors depend on the votes through the weights unless `answered` is given.
  """
  orders = DEFAULT_ORDERS if orders is None else np.asarray(orders, dtype=np.float64)
  votes = np.asarray(votes)
  logq = logq_gaussian(votes, sigma2)
  answer_dd = rdp_gaussian(logq, sigma2, orders)
  answer_di = rdp_data_independent_gaussian(sigma2, orders)
  if aggregator == 'gnmax':
    logpr, test_dd, test_di = None, 0.0, 0.0
    weights = np.ones(len(votes))
  elif aggregator == 'confident_gnmax':
    logpr = logpr_answered(votes, threshold, sigma1)
    test_dd = rdp_threshold(logpr, sigma1, orders).sum(axis=0)
    test_di = len(votes) * rdp_data_independent_threshold(sigma1, orders)
    weights = np.exp(logpr)
  else:
    raise ValueError(f'aggregator {aggregator!r} cannot be analysed from votes; choose gnmax or '
                     'confident_gnmax')
  if answered is not None:
    weights = np.asarray(answered, dtype=np.float64)
  return {'orders': orders, 'data_dependent': test_dd + weights @ answer_dd,
          'data_independent': test_di + weights.sum() * answer_di,
          'expected_answered': float(weights.sum()), 'weights': weights, 'logq': logq,
          'logpr_answered': logpr}


def epsilon_from_rdp(orders, rdp_vector, delta: float) -> tuple[float, float]:
  """(ε, optimal order) at δ by dp-accounting's RDP → (ε, δ) conversion over these orders."""
  eps, order = dp_rdp.compute_epsilon(list(orders), list(rdp_vector), delta)
  return float(eps), float(order)


def analyze(votes, *, aggregator: str, sigma2: float, threshold=None, sigma1=None, delta: float,
            orders=None, smooth_sensitivity: bool = False, beta=None, answered=None) -> dict:
  """The PATE analysis of a votes matrix under the expected-answered accounting (the 2018 scripts).

  Args:
    votes: int vote counts [queries, classes], every row with the same total (the teachers).
    aggregator: 'gnmax' or 'confident_gnmax' (then `threshold` and `sigma1` are required).
    sigma2: the GNMax noise; delta: the target δ; orders: RDP orders (default `DEFAULT_ORDERS`).
    smooth_sensitivity: also compute the GNSS release of the data-dependent bound
      (`pate_smooth.smooth_sensitivity_release`) at the data-dependent optimal order.
    beta: the smoothness β of that release (default: chosen by the scripts' grid search).
    answered: None (expected-answered accounting) or a boolean mask [queries] of the answers a run
      actually released (realised accounting; `expected_answered` is then their count).

  Returns:
    {'aggregator', 'queries', 'teachers', 'classes', 'delta', 'expected_answered',
    'epsilon_data_independent', 'order_data_independent', 'epsilon_data_dependent',
    'order_data_dependent'} and with `smooth_sensitivity` also 'smooth_sensitivity': {'order', 'beta',
    'expected_smooth_sensitivity', 'sigma_ss', 'noise_std', 'conditions_hold',
    'epsilon_with_smooth_sensitivity'}.

  *Formal guarantees*: none by itself. Every number here is computed from the votes without noise; the
  data-dependent ε holds for these votes only and is not safe to publish; the GNSS parameters are tuned
  on the votes as in the 2018 scripts. The guarantee of a run is `data_independent_epsilon` of its
  realised counts.
  """
  if aggregator == 'confident_gnmax' and (threshold is None or sigma1 is None):
    raise ValueError('confident_gnmax needs threshold and sigma1')
  if aggregator == 'gnmax' and (threshold is not None or sigma1 is not None):
    raise ValueError('gnmax runs no threshold test; leave threshold and sigma1 out')
  votes = np.asarray(votes)
  if votes.ndim != 2 or not len(votes):
    raise ValueError(f'analyze needs votes [queries ≥ 1, classes], got shape {votes.shape}')
  rdp = vote_rdp(votes, aggregator=aggregator, sigma2=sigma2, threshold=threshold, sigma1=sigma1,
                 orders=orders, answered=answered)
  eps_di, order_di = epsilon_from_rdp(rdp['orders'], rdp['data_independent'], delta)
  eps_dd, order_dd = epsilon_from_rdp(rdp['orders'], rdp['data_dependent'], delta)
  out = {'aggregator': aggregator, 'queries': int(votes.shape[0]), 'teachers': int(votes[0].sum()),
         'classes': int(votes.shape[1]), 'delta': delta,
         'expected_answered': rdp['expected_answered'],
         'epsilon_data_independent': eps_di, 'order_data_independent': order_di,
         'epsilon_data_dependent': eps_dd, 'order_data_dependent': order_dd}
  if smooth_sensitivity:
    from dpal_jax.privacy import pate_smooth  # pylint: disable=import-outside-toplevel (it imports this)
    out['smooth_sensitivity'] = pate_smooth.smooth_sensitivity_release(
        votes, rdp, order=order_dd, delta=delta, aggregator=aggregator, sigma2=sigma2,
        threshold=threshold, sigma1=sigma1, beta=beta)
  return out


def lnmax_answer_probabilities(votes, scale: float) -> np.ndarray:
  """Pr[argmax_j(n_j + Lap(scale)) = j] for one row of votes, by numerical integration (small C).

  Pr[j] = ∫ f(x − n_j) Π_{k≠j} F(x − n_k) dx, f and F the Laplace density and distribution function.
  """
  votes = np.asarray(votes, dtype=np.float64)
  noise = stats.laplace(scale=scale)

  def density(x, j):
    others = np.delete(votes, j)
    return noise.pdf(x - votes[j]) * np.prod(noise.cdf(x - others))

  points = sorted(set(votes.tolist()))
  lo, hi = votes.min() - 60 * scale, votes.max() + 60 * scale
  probs = np.array([integrate.quad(density, lo, hi, args=(j,), points=points, limit=200)[0]
                    for j in range(len(votes))])
  return probs
