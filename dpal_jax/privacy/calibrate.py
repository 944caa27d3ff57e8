"""Calibration on dp-accounting: σ, sampling rate or steps for a target ε given the rest of a history.

All three solve `ε(history + one DP-SGD phase) = target` with `dp_accounting.calibrate_dp_mechanism`
(bracket, Brent's method, then a nudge to the side where ε ≤ target), so every returned value keeps
the history at or below the target in the accountant it was calibrated with.
"""

from collections.abc import Sequence

import dp_accounting

from dpal_jax.errors import ConfigError
from dpal_jax.privacy import accounting

MAX_NOISE_MULTIPLIER = 1e4


def _epsilon_of(target_epsilon, delta, accountant, pld_discretization):
  """ε of a history as calibration sees it: exact wherever it is ≤ target (accounting.min_useful_order)."""
  min_order = accounting.min_useful_order(target_epsilon, delta)
  return lambda events: accounting.epsilon(events, delta, accountant, pld_discretization, min_order)


def _calibrate(make_events, target_epsilon, delta, accountant, bracket, discrete=False, tol=None,
               pld_discretization=accounting.PLD_DISCRETIZATION):
  return dp_accounting.calibrate_dp_mechanism(
      accounting.accountant_factory(accountant, pld_discretization,
                                    accounting.min_useful_order(target_epsilon, delta)),
      lambda x: dp_accounting.ComposedDpEvent(list(make_events(x))),
      target_epsilon, delta, bracket_interval=bracket, discrete=discrete, tol=tol)


def noise_multiplier(target_epsilon: float, delta: float, phases: Sequence[tuple[float, int]],
                     history: Sequence[dp_accounting.DpEvent] = (), accountant: str = 'rdp',
                     tol: float = 1e-6, pld_discretization: float = accounting.PLD_DISCRETIZATION) -> float:
  """The smallest σ, shared by `phases` [(q, steps), …], with ε(history + phases) ≤ target."""
  def events(sigma):
    return [*history, *(accounting.dpsgd_event(q, sigma, steps) for q, steps in phases)]

  epsilon_of = _epsilon_of(target_epsilon, delta, accountant, pld_discretization)
  eps_at = lambda sigma: epsilon_of(events(sigma))
  if eps_at(MAX_NOISE_MULTIPLIER) > target_epsilon:
    raise ConfigError(
        f'privacy.epsilon ({target_epsilon}) is too small for this schedule: even a noise multiplier of '
        f'{MAX_NOISE_MULTIPLIER:g} spends more; raise the budget or train fewer steps (train.epochs)')
  bracket = dp_accounting.LowerEndpointAndGuess(0.1, 1.0)
  if accountant != 'rdp':   # costly accountant: start from the RDP answer, which is close
    guess = noise_multiplier(target_epsilon, delta, phases, history, 'rdp', tol=tol)
    gap = lambda sigma: eps_at(sigma) - target_epsilon
    bracket = _bracket_around(lambda sigma: -gap(sigma), guess, 0.0, MAX_NOISE_MULTIPLIER)
  return _calibrate(events, target_epsilon, delta, accountant, bracket, tol=tol,
                    pld_discretization=pld_discretization)


def sample_rate(target_epsilon: float, delta: float, noise_multiplier: float, steps: int,
                history: Sequence[dp_accounting.DpEvent] = (), accountant: str = 'rdp',
                tol: float = 1e-5, guess: float | None = None,
                pld_discretization: float = accounting.PLD_DISCRETIZATION) -> float:
  """The largest rate q ≤ 1 with ε(history + `steps` steps at (q, σ)) ≤ target; 0 if none is.

  `guess` (e.g. the rate of a neighbouring schedule) only narrows the bracket the root is searched in.
  """
  def events(q):
    return [*history, accounting.dpsgd_event(q, noise_multiplier, steps)]

  epsilon_of = _epsilon_of(target_epsilon, delta, accountant, pld_discretization)
  gap = lambda q: epsilon_of(events(q)) - target_epsilon
  if gap(1.0) <= 0:
    return 1.0
  if gap(0.0) >= 0:
    return 0.0
  bracket = dp_accounting.ExplicitBracketInterval(0.0, 1.0)
  if guess is not None and 0 < guess < 1:
    bracket = _bracket_around(gap, guess, 0.0, 1.0)
  return _calibrate(events, target_epsilon, delta, accountant, bracket, tol=tol,
                    pld_discretization=pld_discretization)


def rescaled_rates(rates: Sequence[float], steps: int, sigma: float, new_steps: int,
                   new_sigma: float) -> list[float]:
  """Rates at (S', σ') spending about what `rates` spend at (S, σ): ε ≈ c·q·√S/σ, so q' = q·(σ'/σ)·√(S/S').

  A warm start for `sample_rate(guess=…)` when a search moves from one (steps, σ) to the next.

  >>> rescaled_rates([0.1], 100, 2.0, 400, 2.0)
  [0.05]
  """
  scale = (new_sigma / sigma) * (steps / new_steps) ** 0.5
  return [q * scale for q in rates]


def _bracket_around(gap, guess: float, lower: float, upper: float, factor: float = 1.01):
  """A sign-changing interval of the increasing `gap` near `guess`, widening geometrically.

  The caller has checked gap(lower) ≤ 0 ≤ gap(upper), so the widening always stops.
  """
  low, high = max(lower, guess / factor), min(upper, guess * factor)
  gap_low, gap_high = gap(low), gap(high)
  while gap_low > 0:
    factor *= factor
    high, low = low, max(lower, low / factor)
    gap_low = gap(low)
  while gap_high < 0:
    factor *= factor
    low, high = high, min(upper, high * factor)
    gap_high = gap(high)
  return dp_accounting.ExplicitBracketInterval(low, high)


def steps(target_epsilon: float, delta: float, sample_rate: float, noise_multiplier: float,
          history: Sequence[dp_accounting.DpEvent] = (), accountant: str = 'rdp',
          pld_discretization: float = accounting.PLD_DISCRETIZATION) -> int:
  """The largest number of steps at (q, σ) with ε(history + steps) ≤ target (0 if even one exceeds)."""
  def events(count):
    return [*history, accounting.dpsgd_event(sample_rate, noise_multiplier, int(count))]

  epsilon_of = _epsilon_of(target_epsilon, delta, accountant, pld_discretization)
  eps_at = lambda count: epsilon_of(events(count))
  if eps_at(1) > target_epsilon:
    return 0
  return int(_calibrate(events, target_epsilon, delta, accountant,
                        dp_accounting.LowerEndpointAndGuess(1, 128), discrete=True,
                        pld_discretization=pld_discretization))
