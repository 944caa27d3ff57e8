"""The split of ε between training and selection chosen by the planner (`privacy.epsilon_al_split = 'auto'`).

With 'auto', `privacy.epsilon_al` is the most the user lets selection spend; the planner plans the run at
each of `FRACTIONS` of it and keeps the query budget of largest `proxy`, a documented stand-in for the
expected accuracy computed from public quantities only (sizes, T, mechanism, δ, the planned σ — never
data). 'fixed' (the default) spends privacy.epsilon_al as given. See docs/selection.md.

**Proxy.** Two effects of moving budget from training to selection:
- Training: every cohort ends at the target ε, so a larger query budget leaves training fewer steps S
  or a larger noise multiplier (`cohort_exact` keeps σ and the expected batch B and cuts S). Summed over
  the run, the noisy gradients carry signal ∝ S·B against noise ∝ √S·σ̄·C: signal-to-noise
  R = √S·B/σ̄, with σ̄ the step-weighted mean noise multiplier of the plan's phases.
- Selection: a round of per-candidate ε_q (the round's ε at δ in the plan's accountant) selects at most
  the fidelity ceiling F(ε_q) of `fidelity_ceiling`, against π = 2k/N for a uniform draw. Its lift
  ℓ = (F − π)/(1 − π) ∈ [0, 1] is the share of the round's picks that are better than random. A
  perfectly selected label is valued at 1 + `SELECTION_GAIN` random ones (a public assumption), so the
  labels are worth W = (n₀ + Σ_r k_r·(1 + g·ℓ_r)) / (n₀ + Σ_r k_r) random labels each on average.
proxy = W·R (W labels' worth times the training signal-to-noise). N is not read from the data: k/N is modelled as `QUERY_FRACTION` (as `subsampled_top_k`).
The ceiling is optimistic (mechanisms reach ≈ 80–90 % of it at ε_q ≤ 0.5 on mnist5k), which favours
spending on selection; the choice is still small whenever the ceiling barely exceeds π.
"""

import math

from dpal_jax.privacy import accounting

FRACTIONS = (0.125, 0.25, 0.5, 0.75, 1.0)   # of privacy.epsilon_al: the query budgets compared
SELECTION_GAIN = 1.0     # g: a perfectly selected label is worth 1 + g random labels (assumption)
QUERY_FRACTION = 0.1     # k/N modelled (the planner reads no pool)
SPLITS = ('fixed', 'auto')


def fidelity_ceiling(epsilon: float, k: int, n: int, delta: float = 0.0) -> float:
  """The largest expected selection fidelity of a per-candidate (ε, δ)-DP top-k of k among n candidates.

  Let a be the mean probability that one of the 2k best candidates is picked and r that of one of the
  other n − 2k. Replacing a best candidate's record by one of a low score changes its pick probability by
  at most the DP guarantee, a ≤ e^ε·r + δ, where r is taken to be the pick probability of a low candidate
  (a release that treats candidates with equal scores alike, and low scores all equal: the extreme case).
  With k = 2k·a + (n − 2k)·r picks in all, the fidelity 2a is at most

    2·(k + (n − 2k)·δ·e^−ε) / (2k + (n − 2k)·e^−ε),  capped at 1,

  which is 2k/n (random) at ε = 0 and 1 as ε → ∞.

  >>> round(fidelity_ceiling(0.5, 250, 3500), 3)
  0.216
  """
  if not 0 < k <= n:
    raise ValueError(f'need 0 < k <= n, got k={k}, n={n}')
  if 2 * k >= n or math.isinf(epsilon):
    return 1.0
  shrink = math.exp(-epsilon)
  return min(1.0, 2 * (k + (n - 2 * k) * delta * shrink) / (2 * k + (n - 2 * k) * shrink))


def round_epsilon(query, delta: float, accountant: str) -> float:
  """ε at δ of one query round alone (Laplace: its pure ε_q)."""
  params = query.mechanism.params()
  if query.mechanism.name == 'laplace':
    return float(params['epsilon'])
  return accounting.epsilon([query.mechanism.dp_event()], delta, accountant)


def proxy(plan) -> dict:
  """{'steps', 'sigma', 'snr', 'worth', 'proxy', 'round_epsilon'} of a plan (module docstring)."""
  steps = sum(p.steps for p in plan.phases)
  sigma = sum(p.steps * p.noise_multiplier for p in plan.phases) / max(steps, 1)
  sizes = plan.cohort_sizes
  worth_sum, eps_rounds = float(sizes[0]), []
  for query, k in zip(plan.queries, sizes[1:]):
    eps_q = round_epsilon(query, plan.delta, plan.accountant)
    n = max(2 * k + 1, math.ceil(k / QUERY_FRACTION))
    baseline = 2 * k / n
    lift = (fidelity_ceiling(eps_q, k, n) - baseline) / (1 - baseline)
    worth_sum += k * (1 + SELECTION_GAIN * lift)
    eps_rounds.append(eps_q)
  worth_sum += sum(sizes[1 + len(plan.queries):])   # rounds not planned as private add plain labels
  worth = worth_sum / sum(sizes)
  snr = math.sqrt(steps) * plan.expected_batch_size / sigma if sigma > 0 else math.inf
  return {'steps': steps, 'sigma': sigma, 'snr': snr, 'worth': worth, 'proxy': worth * snr,
          'round_epsilon': eps_rounds}


def choose(epsilon_al: float, plan_at) -> tuple:
  """(the plan of largest proxy, the choice as plain data) over query budgets FRACTIONS × epsilon_al.

  `plan_at(budget)` is the planner at query budget `budget`. Ties keep the smaller budget; the result is
  deterministic (no randomness, no data).
  """
  best, rows = None, []
  for fraction in FRACTIONS:
    budget = fraction * epsilon_al
    plan = plan_at(budget)
    score = proxy(plan)
    rows.append({'epsilon_al': budget,
                 **{k: score[k] for k in ('steps', 'sigma', 'snr', 'worth', 'proxy')}})
    if best is None or score['proxy'] > best[1] + 1e-12:
      best = (plan, score['proxy'], budget)
  choice = {'rule': 'max W * sqrt(steps) * B / sigma (privacy/split.py, docs/selection.md)', 'max_epsilon_al': epsilon_al,
            'selection_gain': SELECTION_GAIN, 'query_fraction': QUERY_FRACTION, 'chosen': best[2],
            'candidates': rows}
  return best[0], choice
