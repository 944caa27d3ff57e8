"""Smooth sensitivity of PATE's data-dependent RDP and its GNSS release (NumPy, SciPy; no JAX).

The data-dependent RDP of `pate_rdp` is a function of the votes, so publishing it leaks. Papernot et al.
2018 (App. B, C) release it with the Gaussian noise with smooth sensitivity (GNSS) mechanism:

- β(q) at a fixed order λ: Theorem 6's bound where log q < log q₀ and λ/σ² above, where q₀ is the
  point at which the two cross (`logq0_gnmax`). Conditions C5 (β non-decreasing on (0, q₀)) and C6
  (β(b_u(q)) − β(q) non-decreasing on (0, b_l(q₀))) make the sensitivity bounds below valid; the 2018
  scripts check them with a symbolic derivative, `conditions_hold` checks them on a dense grid of log q.
- Local sensitivity (Alg. 3, Prop. 13): a neighbour changes every gap n_{j*} − n_j by at most 2, so q̃
  moves within [b_l(q), b_u(q)], b_{l,u}(q) = (C−1)/2 · erfc(erfcinv(2q/(C−1)) ± 1/σ) (b_u capped at
  1), and LS(q) = max(β(b_u(q)) − β(q), β(q) − β(b_l(q))), taken at q₁ = b_l(q₀) on [q₁, q₀].
- Local sensitivity at distance d (Alg. 4, 5): walk the histogram towards [q₁, q₀] one vote at a time
  (widening the top gap when q > q₀, narrowing it when q < q₁), the plateau LS(q₁) beyond. For the
  threshold test the RDP depends on the top count v only, so LS at distance d is the largest step of
  its RDP over v' ∈ [v − d, v + d]. Here every curve is made non-decreasing in d (LS within distance
  ≤ d), so curves of several queries may be summed.
- Smooth sensitivity SS_β = max_d e^{−βd}·LS(d) of the total (sum over queries, answers weighted as
  in the accounting). GNSS releases RDP(λ) + SS_β·σ_ss·N(0, 1); its own RDP at order λ (Theorem 23,
  for 1 < λ < 1/(2β)) is λ·e^{2β}/σ_ss² + (−½·log(1 − 2λβ) + βλ)/(λ − 1). β and σ_ss are chosen as in
  the scripts: β on the grid (0.3 … 0.495)/λ, σ_ss = (λ·e^{2β}/SS_β)^{1/3}, minimising RDP + GNSS cost +
  2·SS_β·σ_ss; that choice sees the votes, so, like the scripts, the result is reported, not released.
"""

import functools
import math

import numpy as np
from scipy import optimize
from scipy import special
from scipy import stats

from dpal_jax.privacy import pate_rdp


@functools.lru_cache(maxsize=1024)
def logq0_gnmax(sigma: float, order: float) -> float:
  """log q₀: where Theorem 6's bound at order λ meets λ/σ² (below it the bound is smaller).

  Starts at the largest log q where Theorem 6 applies at λ (μ₁ > λ, μ₂ > 1) and brackets the crossing
  downwards.
  """
  def gap(logq):
    return float(pate_rdp.theorem6_bound(logq, sigma, order)) - order / sigma**2

  upper = min(-(1 + 1 / sigma)**2, -((order - 0.99) / sigma)**2, -1 / sigma**2)
  while not pate_rdp.theorem6_applies(upper, sigma):
    upper *= 1.5
  if gap(upper) < 0:
    return upper
  lower = 2 * upper
  while gap(lower) > 0:
    if lower < -1e4:
      raise ValueError(f'no crossing of Theorem 6 and λ/σ² found (σ = {sigma}, λ = {order})')
    lower *= 1.5
  return float(optimize.brentq(gap, lower, upper))


def beta_gnmax(logq, sigma: float, order: float) -> np.ndarray:
  """β(q): the data-dependent RDP at order λ as a function of log q (Theorem 6 below log q₀)."""
  logq = np.asarray(logq, dtype=np.float64)
  dependent = pate_rdp.theorem6_bound(np.minimum(logq, logq0_gnmax(sigma, order)), sigma, order)
  return np.where(np.isneginf(logq), 0.0,
                  np.where(logq >= logq0_gnmax(sigma, order), order / sigma**2, dependent))


def _log_bound(logq, sigma, num_classes, sign):
  """log b_l(q) (sign +1) or log b_u(q) (sign −1), in log space: (C−1)·Φ(Φ⁻¹(q/(C−1)) ∓ √2/σ)."""
  logq = np.asarray(logq, dtype=np.float64)
  log_rest = math.log(num_classes - 1)
  with np.errstate(divide='ignore'):
    z = special.ndtri_exp(np.minimum(logq - log_rest, 0.0))
    return np.minimum(log_rest + special.log_ndtr(z - sign * math.sqrt(2) / sigma), 0.0)


def local_sensitivity_gnmax(logq, sigma: float, num_classes: int, order: float) -> np.ndarray:
  """Alg. 3: an upper bound on the local sensitivity of β at log q (vectorised over logq)."""
  logq = np.asarray(logq, dtype=np.float64)
  logq0 = logq0_gnmax(sigma, order)
  logq1 = float(_log_bound(logq0, sigma, num_classes, +1))
  logq = np.where((logq >= logq1) & (logq <= logq0), logq1, logq)
  here = beta_gnmax(logq, sigma, order)
  up = beta_gnmax(_log_bound(logq, sigma, num_classes, -1), sigma, order)
  down = beta_gnmax(_log_bound(logq, sigma, num_classes, +1), sigma, order)
  return np.maximum(up - here, here - down)


def _walk(votes, go_left: bool, steps: int) -> np.ndarray:
  """The histograms 0..steps moves away: a vote from the runner-up to the top (left) or back (right)."""
  v = sorted((int(x) for x in votes), reverse=True)
  rows = [list(v)]
  for _ in range(steps):
    if go_left:
      if v[1] == 0:
        break
      v[0] += 1
      v[1] -= 1
      v[1:] = sorted(v[1:], reverse=True)
    else:
      if v[0] <= v[1]:
        break
      v[0] -= 1
      v[1] += 1
    rows.append(list(v))
  return np.asarray(rows)


def local_sensitivity_by_distance_gnmax(votes, num_teachers: int, sigma: float,
                                        order: float) -> np.ndarray:
  """Alg. 4–5: LS of β within distance d of one histogram, d = 0 … num_teachers − 1 (non-decreasing)."""
  num_classes = len(votes)
  logq0 = logq0_gnmax(sigma, order)
  logq1 = float(_log_bound(logq0, sigma, num_classes, +1))
  out = np.full(num_teachers, float(local_sensitivity_gnmax(logq1, sigma, num_classes, order)))
  logq = pate_rdp.logq_gaussian(votes, sigma)
  if logq1 <= logq <= logq0:
    return out
  rows = _walk(votes, go_left=logq > logq0, steps=num_teachers - 1)
  path = pate_rdp.logq_gaussian(rows, sigma)
  outside = (path > logq0) if logq > logq0 else (path < logq1)
  reach = len(path) if outside.all() else int(np.argmin(outside)) + 1   # up to the first inside
  out[:reach] = local_sensitivity_gnmax(path[:reach], sigma, num_classes, order)
  return np.maximum.accumulate(out)


@functools.lru_cache(maxsize=256)
def _threshold_steps(num_teachers: int, threshold: float, sigma1: float, order: float) -> np.ndarray:
  """Per top count v = 0 … n: the largest change of the threshold RDP when v moves by one."""
  v = np.arange(num_teachers + 1, dtype=np.float64)
  curve = pate_rdp.rdp_threshold(stats.norm.logsf(threshold - v, scale=sigma1), sigma1, [order])[:, 0]
  step = np.abs(np.diff(curve))
  return np.maximum(np.concatenate((step, [0.0])), np.concatenate(([0.0], step)))


def local_sensitivity_by_distance_threshold(votes, num_teachers: int, threshold: float, sigma1: float,
                                            order: float) -> np.ndarray:
  """LS of the threshold RDP within distance d of one histogram, d = 0 … num_teachers − 1."""
  steps = _threshold_steps(num_teachers, float(threshold), float(sigma1), float(order))
  top = int(round(float(np.max(votes))))
  d = np.arange(num_teachers)
  near = np.maximum(steps[np.clip(top - d, 0, num_teachers)], steps[np.clip(top + d, 0, num_teachers)])
  return np.maximum.accumulate(near)


def smooth_sensitivity(beta: float, local_by_distance) -> float:
  """SS_β = max_d e^{−βd}·LS(d) (Nissim, Raskhodnikova, Smith 2007)."""
  ls = np.asarray(local_by_distance, dtype=np.float64)
  return float(np.max(ls * np.exp(-beta * np.arange(len(ls)))))


def gnss_rdp(beta: float, sigma_ss: float, order: float) -> float:
  """Theorem 23: the RDP at order λ of adding SS_β·σ_ss·N(0, 1), for 1 < λ < 1/(2β)."""
  if beta > 0 and not 1 < order < 1 / (2 * beta):
    raise ValueError(f'order {order} is outside (1, 1/(2β)) = (1, {1 / (2 * beta)})')
  return (order * math.exp(2 * beta) / sigma_ss**2
          + (-0.5 * math.log(1 - 2 * order * beta) + beta * order) / (order - 1))


def data_independent_always_optimal(num_teachers: int, num_classes: int, order: float, *, sigma2: float,
                                    threshold=None, sigma1=None) -> tuple[bool, bool]:
  """Whether the data-dependent bound equals λ/σ² for every histogram: (threshold step, answer step).

  The answer's bound is smallest for unanimous votes, the threshold's depends on the top count only and
  is checked at its ends (0 and n).
  """
  unanimous = np.zeros(num_classes)
  unanimous[0] = num_teachers
  answer = math.isclose(float(pate_rdp.rdp_gaussian(pate_rdp.logq_gaussian(unanimous, sigma2), sigma2,
                                                    [order])[0]), order / sigma2**2)
  if threshold is None:
    return True, answer
  ends = pate_rdp.rdp_threshold(stats.norm.logsf(threshold - np.array([0.0, num_teachers]),
                                                 scale=sigma1), sigma1, [order])[:, 0]
  test = bool(np.allclose(ends, order / (2 * sigma1**2)))
  return test, answer


def conditions_hold(sigma: float, num_classes: int, order: float, points: int = 4000) -> bool:
  """C5 and C6 at (σ, C, λ), checked numerically on `points` values of log q, geometrically spaced.

  C5: β (Theorem 6) non-decreasing in q on (0, q₀); C6: β(b_u(q)) − β(q) non-decreasing on (0, b_l(q₀)).
  """
  logq0 = logq0_gnmax(sigma, order)
  logq1 = float(_log_bound(logq0, sigma, num_classes, +1))

  def non_decreasing(values):
    values = np.asarray(values)
    return bool(np.all(np.isfinite(values)) and np.all(np.diff(values) >= -1e-12 * np.abs(values).max()))

  def grid(top):
    return -np.geomspace(max(-100 * logq0, 1e4), -top, points)   # increasing log q up to `top`

  beta = lambda logq: pate_rdp.theorem6_bound(logq, sigma, order)  # noqa: E731
  c5 = non_decreasing(beta(grid(logq0)))
  lq = grid(logq1)
  c6 = non_decreasing(beta(_log_bound(lq, sigma, num_classes, -1)) - beta(lq))
  return c5 and c6


def local_sensitivity_total(votes, weights, *, order: float, sigma2: float, threshold=None, sigma1=None,
                            answers: bool = True) -> np.ndarray:
  """LS within distance d of the total data-dependent RDP at `order`: Σ_i (LS_test,i + w_i·LS_answer,i).

  `weights` weigh each query's answer as in `pate_rdp.vote_rdp`; the threshold tests count when
  `threshold` is given, the answers when `answers`.
  """
  votes = np.asarray(votes)
  num_teachers = int(votes[0].sum())
  ls = np.zeros(num_teachers)
  for row, weight in zip(votes, weights):
    if threshold is not None:
      ls += local_sensitivity_by_distance_threshold(row, num_teachers, threshold, sigma1, order)
    if answers and weight:
      ls += weight * local_sensitivity_by_distance_gnmax(row, num_teachers, sigma2, order)
  return ls


def sanitised_release(total_rdp: float, local_by_distance, *, order: float, beta: float, sigma_ss: float,
                      delta: float, rng: np.random.Generator) -> dict:
  """The GNSS release of a data-dependent RDP total at fixed, public (λ, β, σ_ss) (Theorem 23).

  Draws total + SS_β·σ_ss·N(0, 1) once. Returns {'noisy_rdp', 'gnss_rdp' (its cost at λ),
  'epsilon_sanitised' (ε at δ, at λ, of max(noisy, 0) + the GNSS cost)}.

  *Formal guarantees*: the noisy value is (λ, gnss_rdp)-RDP in the votes when λ, β and σ_ss were fixed
  without looking at them; `epsilon_sanitised` is then post-processing, a noisy estimate of the
  data-dependent ε plus the cost of publishing it, not a worst-case bound.
  """
  cost = gnss_rdp(beta, sigma_ss, order)
  noisy = float(total_rdp) + smooth_sensitivity(beta, local_by_distance) * sigma_ss * rng.standard_normal()
  return {'noisy_rdp': noisy, 'gnss_rdp': cost,
          'epsilon_sanitised': pate_rdp.epsilon_from_rdp([order], [max(noisy, 0.0) + cost], delta)[0]}


def smooth_sensitivity_release(votes, rdp: dict, *, order: float, delta: float, aggregator: str,
                               sigma2: float, threshold=None, sigma1=None, beta=None) -> dict:
  """GNSS parameters and ε for releasing the total data-dependent RDP at `order` (2018 scripts' method).

  Args:
    votes: the votes [queries, C]; rdp: `pate_rdp.vote_rdp`'s result for them (its weights weigh each
      answer's local sensitivity); order: the order λ of the release; delta: the target δ.
    aggregator, sigma2, threshold, sigma1: as in `pate_rdp.vote_rdp`.
    beta: a fixed β (then only σ_ss is tuned), or None for the grid search.

  Returns:
    {'order', 'beta', 'expected_smooth_sensitivity' (SS_β of the total), 'sigma_ss', 'noise_std'
    (SS_β·σ_ss), 'conditions_hold' (C5, C6), 'epsilon_with_smooth_sensitivity' (ε at δ of the
    data-dependent RDP plus the GNSS cost at λ; None when the conditions fail)}. All-data-independent
    settings need no release: β = 0, SS = 0, σ_ss = None, ε as the data-dependent (= independent) one.
  """
  votes = np.asarray(votes)
  num_teachers, num_classes = int(votes[0].sum()), votes.shape[1]
  index = int(np.argmin(np.abs(rdp['orders'] - order)))
  total = float(rdp['data_dependent'][index])
  thresholded = aggregator == 'confident_gnmax'
  ind_test, ind_answer = data_independent_always_optimal(
      num_teachers, num_classes, order, sigma2=sigma2, threshold=threshold if thresholded else None,
      sigma1=sigma1)
  out = {'order': order, 'beta': 0.0, 'expected_smooth_sensitivity': 0.0, 'sigma_ss': None,
         'noise_std': 0.0, 'conditions_hold': True,
         'epsilon_with_smooth_sensitivity': pate_rdp.epsilon_from_rdp([order], [total], delta)[0]}
  if ind_test and ind_answer:
    return out
  if not conditions_hold(sigma2, num_classes, order):
    return out | {'beta': None, 'expected_smooth_sensitivity': None, 'noise_std': None,
                  'conditions_hold': False, 'epsilon_with_smooth_sensitivity': None}
  ls = local_sensitivity_total(votes, rdp['weights'], order=order, sigma2=sigma2,
                               threshold=threshold if thresholded and not ind_test else None,
                               sigma1=sigma1, answers=not ind_answer)
  betas = [beta] if beta is not None else np.arange(0.3 / order, 0.495 / order, 0.01 / order)
  best = None
  for b in betas:
    ss = smooth_sensitivity(b, ls)
    sigma_ss = (order * math.exp(2 * b) / ss)**(1 / 3)
    cost = gnss_rdp(b, sigma_ss, order)
    if best is None or total + cost + 2 * ss * sigma_ss < best[0]:
      best = (total + cost + 2 * ss * sigma_ss, float(b), ss, sigma_ss, cost)
  _, b, ss, sigma_ss, cost = best
  return out | {'beta': b, 'expected_smooth_sensitivity': ss, 'sigma_ss': sigma_ss,
                'noise_std': ss * sigma_ss,
                'epsilon_with_smooth_sensitivity': pate_rdp.epsilon_from_rdp([order], [total + cost],
                                                                            delta)[0]}
