"""The original DPAL schedules (docs/original_dpal.md §b): 'naive', 'step_ampl_prob', 'step_ampl_prob_noise',
'noise_red_prob', ported onto dp-accounting with the original's searches and tolerances.

Naive plan: phase i has rate q_i = 1/floor(N_i/B) and S_i = floor(N_i/B)·E_i steps; σ is calibrated so
that the naive plan as a whole (as if everybody were labeled from the start) spends ε.
Round i ≥ 1 targets, before changing anything:
  ε_old,i = ε(old history [(σ_k, q_old,k, S'_k)]_{k<i} + (σ_i, q_i, S_i)),  ε_new,i = ε_old,i − (i/T)·ε_AL,
then gives every earlier cohort one shared rate q_old (solved against the initial cohort's history)
and the new cohort a rate q_new (solved against its single phase), so that both reach their targets:
- step amplification keeps σ and bisects the steps S in [S_i, 3·S_i] until E[B] = q_old·N_{i-1} +
  q_new·Q_i is within 2 of B (stopping on an integer stall); '…_noise' then fine-tunes σ at that S;
- noise reduction keeps S_i and bisects σ in [0.6·σ, σ].
Faithful quirks (parity with the original's schedules): the step count returned is the upper bracket
while the rates are those of the last evaluated S; the σ search returns its upper bracket. Later
cohorts are only approximately accounted (their histories differ from the initial cohort's, and the
query cost is subtracted linearly), so they can end slightly above ε: the planner reports each
cohort's true ε; `cohort_exact` is the mode that fixes this.
"""

import dataclasses
from collections.abc import Sequence

import dp_accounting

from dpal_jax.privacy import accounting
from dpal_jax.privacy import calibrate
from dpal_jax.privacy import events

ORIGINAL_MODES = ('naive', 'step_ampl_prob', 'step_ampl_prob_noise', 'noise_red_prob')
BATCH_TOLERANCE = 2.0   # the original's batch_size_error


@dataclasses.dataclass(frozen=True)
class Problem:
  """What a schedule is derived from (validated by the planner)."""
  cohort_sizes: tuple          # N_0, Q_1, …, Q_T
  batch_size: int              # expected batch B
  epochs: tuple                # E_i per phase, len T + 1
  target_epsilon: float
  delta: float
  epsilon_al: float            # the query budget charged to the training targets (0: queries free)
  query_events: tuple          # one dp-accounting event per query round (empty: no private query)
  accountant: str = 'rdp'
  prior: tuple = ()            # dp events every cohort spent before this run (a pool's persistent ledger)

  @property
  def num_queries(self) -> int:
    return len(self.cohort_sizes) - 1

  @property
  def labeled(self) -> list[int]:
    """N_i: labeled-set size during phase i."""
    total, out = 0, []
    for size in self.cohort_sizes:
      total += size
      out.append(total)
    return out


def naive_rates_and_steps(problem: Problem) -> tuple[list[float], list[int]]:
  """The original's q_i = 1/floor(N_i/B) and S_i = floor(N_i/B)·E_i."""
  per_epoch = [max(1, n // problem.batch_size) for n in problem.labeled]
  return [1.0 / s for s in per_epoch], [s * e for s, e in zip(per_epoch, problem.epochs)]


def _epsilon(problem: Problem, events: Sequence[dp_accounting.DpEvent]) -> float:
  return accounting.epsilon(events, problem.delta, problem.accountant)


class _Round:
  """One query round's rate searches: q_old against the old history, q_new against a fresh one."""

  def __init__(self, problem: Problem, old_history: list, eps_old: float, eps_new: float, i: int):
    self.problem, self.old_history = problem, old_history
    self.eps_old, self.eps_new = eps_old, eps_new
    self.n_old, self.n_new = problem.labeled[i - 1], problem.cohort_sizes[i]
    self.last = None

  def rates(self, steps: int, sigma: float) -> tuple[float, float, float]:
    p = self.problem
    guess_old = guess_new = None
    if self.last is not None:
      last_steps, last_sigma, last_old, last_new = self.last
      guess_old, guess_new = calibrate.rescaled_rates([last_old, last_new], last_steps, last_sigma,
                                                      steps, sigma)
    q_old = calibrate.sample_rate(self.eps_old, p.delta, sigma, steps, self.old_history, p.accountant,
                                  guess=guess_old)
    q_new = calibrate.sample_rate(self.eps_new, p.delta, sigma, steps, (), p.accountant,
                                  guess=guess_new)
    self.last = (steps, sigma, q_old, q_new)
    return q_old, q_new, events.expected_batch((q_old, q_new), (self.n_old, self.n_new))


def _noise_reduction(rnd: _Round, steps: int, sigma: float):
  """Bisects σ in [0.6σ, σ] until E[B] ≈ B; returns (upper σ, rates of the last evaluated σ)."""
  batch = rnd.problem.batch_size
  low, high, previous = 0.6 * sigma, sigma, None
  while True:
    mid = (low + high) / 2
    q_old, q_new, expected = rnd.rates(steps, mid)
    if expected > batch:
      high = mid
    else:
      low = mid
    if abs(expected - batch) <= BATCH_TOLERANCE or (
        previous is not None and round(expected, 1) == round(previous, 1)):
      return high, q_old, q_new
    previous = expected


def _step_amplification(rnd: _Round, naive_steps: int, sigma: float, sigma_correction: bool):
  """Bisects the steps in [S_i, 3·S_i] until E[B] ≈ B; returns (σ, upper S, q_old, q_new)."""
  batch = rnd.problem.batch_size
  low, high = naive_steps, 3 * naive_steps
  steps = previous = high
  q_old, q_new, expected = rnd.rates(steps, sigma)
  while abs(expected - batch) > BATCH_TOLERANCE:
    steps = round((low + high) / 2)
    if steps == previous:
      if sigma_correction:
        if expected < batch:
          steps -= 1
        sigma, q_old, q_new = _noise_reduction(rnd, steps, sigma)
      break
    previous = steps
    q_old, q_new, expected = rnd.rates(steps, sigma)
    if expected > batch:
      low = steps
    else:
      high = steps
  return sigma, high, q_old, q_new


def original_schedule(problem: Problem, mode: str) -> tuple[events.DpsgdPhase, ...]:
  """The schedule the original computes in `mode` (one of ORIGINAL_MODES)."""
  if mode not in ORIGINAL_MODES:
    raise ValueError(f'mode {mode!r} is not one of {ORIGINAL_MODES}')
  rates, naive_steps = naive_rates_and_steps(problem)
  sigma0 = calibrate.noise_multiplier(problem.target_epsilon, problem.delta,
                                      list(zip(rates, naive_steps)), accountant=problem.accountant)
  phases = [events.DpsgdPhase(0, naive_steps[0], sigma0, (rates[0],))]
  T = problem.num_queries
  for i in range(1, T + 1):
    if mode == 'naive':
      phases.append(events.DpsgdPhase(i, naive_steps[i], sigma0, (rates[i],) * (i + 1)))
      continue
    old_history = [accounting.dpsgd_event(p.sample_rates[0], p.noise_multiplier, p.steps)
                   for p in phases]
    eps_old = _epsilon(problem, old_history + [accounting.dpsgd_event(rates[i], sigma0, naive_steps[i])])
    rnd = _Round(problem, old_history, eps_old, eps_old - i / T * problem.epsilon_al, i)
    if mode == 'noise_red_prob':
      steps = naive_steps[i]
      sigma, q_old, q_new = _noise_reduction(rnd, steps, sigma0)
    else:
      sigma, steps, q_old, q_new = _step_amplification(
          rnd, naive_steps[i], sigma0, sigma_correction=mode == 'step_ampl_prob_noise')
    phases.append(events.DpsgdPhase(i, steps, sigma, (q_old,) * i + (q_new,)))
  return tuple(phases)
