"""Mode 'cohort_exact': step amplification with every cohort accounted on its own full history.

The original gives all earlier cohorts one shared rate solved against the initial cohort's history and
subtracts the query cost linearly, so later cohorts end slightly above ε. Here:
1. Epoch plan at the expected batch B: q_k = B/N_k, S_k = ⌈E_k·N_k/B⌉ steps (E_k epochs). σ is
   calibrated so that the initial cohort ends the epoch plan at exactly ε; its ε after each phase
   gives the trajectory τ_0 < … < τ_T = ε.
2. Phase k: every labeled cohort c ≤ k gets its own rate q_c(S, σ), the largest rate with
   ε(history_c + S steps at (q_c, σ)) = τ_k, where history_c holds the cohort's earlier phases and
   the c queries it was exposed to while unlabeled (same accountant). E[B](S) = Σ_c q_c·|c| falls
   with S; S_k is the largest step count with E[B] ≥ B (later phases get more steps than the epoch
   plan: newly labeled cohorts have unspent budget), then σ_k is lowered just enough that E[B] = B
   (less noise per step leaves every cohort a slightly lower rate at the same ε).
So every cohort, the initial one included, ends the last phase at τ_T = ε with its queries counted,
every phase has expected batch B, and no cohort ever exceeds its trajectory. A cohort whose queries
alone already cost more than τ_k sits out phase k (rate 0); one that cannot spend τ_k even at rate 1
is capped at 1.

Individualised targets (per-group budgets, `privacy.group_epsilon`, `groups.py`): with one target
t_s ≤ ε per signature s the units are (cohort c, signature s), and unit (c, s) follows the trajectory
τ_k·t_s/ε with its own rate q_{c,s}, the largest with ε(history_{c,s} + S steps at (q_{c,s}, σ)) = τ_k·t_s/ε; E[B] = Σ q·n over
the planned unit sizes n_{c,s}. Units of one cohort with the same target share a history, so their rate
is solved once. So every unit ends at its own t_s (unless capped at rate 1).
"""

import math

from scipy import optimize

from dpal_jax.privacy import accounting
from dpal_jax.privacy import calibrate
from dpal_jax.privacy import events
from dpal_jax.privacy.modes import Problem

BATCH_TOLERANCE = 1e-3    # |E[B] − B| after the σ fine-tune, in examples
RATE_TOLERANCE = 1e-6     # rates this tight keep E[B] within ≈ 1e-6·(labeled set) of B


def epoch_rates_and_steps(problem: Problem) -> tuple[list[float], list[int]]:
  """q_k = B/N_k and S_k = ⌈E_k·N_k/B⌉: E_k epochs at expected batch B (the original's naive plan,
  `modes.naive_rates_and_steps`, rounds N_k/B down instead)."""
  b = problem.batch_size
  return ([min(1.0, b / n) for n in problem.labeled],
          [math.ceil(e * n / b) for e, n in zip(problem.epochs, problem.labeled)])


class _PhaseSearch:
  """Per-cohort rates for phase k as a function of (steps, σ), warm-started from the last call."""

  def __init__(self, problem: Problem, histories: list, targets: list, sizes):
    self.problem, self.histories, self.targets, self.sizes = problem, histories, targets, sizes
    self.last = None   # (steps, σ, rates) of the last call: its rates seed the next brackets

  def rates(self, steps: int, sigma: float) -> tuple[list[float], float]:
    p = self.problem
    guesses = [None] * len(self.histories)
    if self.last is not None:
      guesses = calibrate.rescaled_rates(self.last[2], self.last[0], self.last[1], steps, sigma)
    rates = [calibrate.sample_rate(target, p.delta, sigma, steps, history, p.accountant,
                                   tol=RATE_TOLERANCE, guess=guess)
             for history, target, guess in zip(self.histories, self.targets, guesses)]
    self.last = (steps, sigma, rates)
    return rates, events.expected_batch(rates, self.sizes)

  def largest_steps(self, sigma: float, start: int) -> tuple[int, float]:
    """The largest S with E[B](S) ≥ B (or 1 if none), and E[B] there; E[B] ∝ 1/√S guides the probes.

    Largest, not smallest: where rates are capped at 1, E[B] stays at B over a range of S.
    """
    batch = self.problem.batch_size
    low, low_batch, high, steps = None, None, None, max(1, start)
    while low is None or high is None or high - low > 1:
      _, expected = self.rates(steps, sigma)
      if expected >= batch - BATCH_TOLERANCE:
        low, low_batch = steps, expected
      else:
        high = steps
        if steps == 1:
          return 1, expected
      proposal = round(steps * (expected / batch) ** 2) if expected > 0 else 1
      floor, ceiling = (low or 0) + 1, (high or math.inf) - 1
      steps = int(min(max(proposal, floor), ceiling))
      if low is None and high is not None and steps >= high:
        steps = max(1, high // 2)
    return low, low_batch

  def fill_batch(self, steps: int, sigma: float, expected: float) -> float:
    """The σ' at which E[B](steps, σ') = B: at a fixed ε, E[B] grows with σ (to the labeled set)."""
    batch = self.problem.batch_size
    if abs(expected - batch) <= BATCH_TOLERANCE:
      return sigma
    gap = lambda s: self.rates(steps, s)[1] - batch
    factor = max(batch / expected, expected / batch) if expected > 0 else 2.0
    low, high = (sigma, sigma * factor) if expected < batch else (sigma / factor, sigma)
    while gap(high) < 0:
      low, high = high, high * factor
    while gap(low) > 0:
      low, high = low / factor, low
    return optimize.brentq(gap, low, high, xtol=1e-7 * sigma)


def schedule(problem: Problem, unit_targets=None, unit_sizes=None) -> tuple[events.DpsgdPhase, ...]:
  """The cohort_exact schedule (see the module docstring).

  Args:
    problem: the validated request (cohort sizes, expected batch, epochs, ε, δ, query events).
    unit_targets: per signature s its target t_s ≤ ε (`groups.Groups.targets`); None: one unit per
      cohort at ε.
    unit_sizes: the planned size of each unit slot c·G + s (`groups.expected_unit_sizes`); None: the
      cohort sizes.

  Returns:
    One `DpsgdPhase` per phase whose `sample_rates` hold one rate per unit slot of cohorts 0..k.

  *Formal guarantees*: each unit's history (its queries and phases), composed in a fresh accountant of
  the problem's kind, ends at most at its target (ε, or t_s) at δ: every rate is `calibrate.sample_rate`'s,
  which keeps the history at or below the trajectory point it was solved for.
  """
  rates, steps = epoch_rates_and_steps(problem)
  prior = list(problem.prior)   # spend before this run (a pool's persistent ledger): starts every history
  sigma = calibrate.noise_multiplier(problem.target_epsilon, problem.delta, list(zip(rates, steps)),
                                     history=prior, accountant=problem.accountant)
  epoch_history = [accounting.dpsgd_event(q, sigma, s) for q, s in zip(rates, steps)]
  trajectory = [accounting.epsilon(prior + epoch_history[:k + 1], problem.delta, problem.accountant)
                for k in range(problem.num_queries)] + [problem.target_epsilon]
  targets = (problem.target_epsilon,) if unit_targets is None else tuple(unit_targets)
  sizes = problem.cohort_sizes if unit_sizes is None else tuple(unit_sizes)
  levels = sorted(set(targets))   # classes (c, level): the units of cohort c with that target
  num_cohorts, per_cohort = len(problem.cohort_sizes), len(levels)
  class_sizes = [sum(sizes[c * len(targets) + s] for s, t in enumerate(targets) if t == level)
                 for c in range(num_cohorts) for level in levels]
  histories = [prior + list(problem.query_events[:c]) for c in range(num_cohorts) for _ in levels]
  scale = [level / problem.target_epsilon for _ in range(num_cohorts) for level in levels]
  phases = []
  for k, target in enumerate(trajectory):
    n = (k + 1) * per_cohort
    search = _PhaseSearch(problem, histories[:n], [target * f for f in scale[:n]], class_sizes)
    phase_steps, expected = search.largest_steps(sigma, steps[k])
    phase_sigma = search.fill_batch(phase_steps, sigma, expected)
    class_rates, _ = search.rates(phase_steps, phase_sigma)
    slot_rates = [class_rates[c * per_cohort + levels.index(t)] for c in range(k + 1) for t in targets]
    phases.append(events.DpsgdPhase(k, phase_steps, phase_sigma, tuple(slot_rates)))
    for i, q in enumerate(class_rates):
      histories[i].append(accounting.dpsgd_event(q, phase_sigma, phase_steps))
  return tuple(phases)

