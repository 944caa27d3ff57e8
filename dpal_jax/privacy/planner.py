"""`make_plan(config)`: the only place a privacy schedule is derived from a config.

Reads privacy.{enabled, epsilon, delta, epsilon_al, mode, accountant, query_mechanism},
al.{strategy, initial_size, query_sizes, labeling_budget}, train.{batch_size, epochs}; refuses an
infeasible request with a ConfigError naming the field and the fix; derives the schedule of the mode
(modes.py for the original's four, cohort_exact.py) and reports, whatever the mode, each cohort's true
ε: its own full history with its queries composed in the same accountant (ledger.py).

Per-group budgets (`privacy.group_epsilon`, `groups.py`): given the pool's `groups.Groups`, mode
'cohort_exact' solves one rate per unit (cohort × group signature) so that each unit ends at the tightest
target of its groups, and the plan reports each group's planned ε.

`privacy.epsilon_al_split = 'auto'` (`split.py`): privacy.epsilon_al is the most selection may spend;
the plan is made at each of a few shares of it and the one of largest public accuracy proxy is returned,
with the comparison in `Plan.epsilon_al_choice`.

Confident fine-tuning under DP (`train.finetune_confident` with privacy.enabled, `_finetunes`): one
`events.FinetunePass` after each phase, every pool example at rate q = B/N_pool for
train.finetune_epochs·⌈N_pool/B⌉ steps, σ calibrated so that all passes together cost
privacy.epsilon_finetune; every unit, labeled or not, pays every pass, so the passes start every cohort's
history (as spend before the run does) and the training is planned on what they leave.

Queries are private only when the strategy looks at the data ('random' does not) and 0 < ε_AL < ∞;
ε_AL = 0 or ∞ means non-private selection (the original's ε_AL = 0): no query events, the plan says
`private_queries: false`, and `epsilon_unlabeled` is ∞ (null in plan.json) unless the strategy is
'random'.
"""

import dataclasses
import math
import time
from collections.abc import Sequence

from dpal_jax import validate
from dpal_jax.errors import ConfigError
from dpal_jax.privacy import accounting
from dpal_jax.privacy import calibrate
from dpal_jax.privacy import cohort_exact
from dpal_jax.privacy import events
from dpal_jax.privacy import groups as groups_lib
from dpal_jax.privacy import mechanisms
from dpal_jax.privacy import modes
from dpal_jax.privacy import split
from dpal_jax.privacy.ledger import Ledger
from dpal_jax.privacy.plan import Plan

MODES = (*modes.ORIGINAL_MODES, 'cohort_exact')


def _epochs(config, num_phases: int) -> tuple[int, ...]:
  epochs = config.train.epochs
  if isinstance(epochs, (list, tuple)):
    if len(epochs) != num_phases:
      raise ConfigError(f'train.epochs ({tuple(epochs)}) needs one entry per phase: {num_phases} '
                        f'(the initial training and one per entry of al.query_sizes)')
    epochs = tuple(epochs)
  else:
    epochs = (epochs,) * num_phases
  if any(int(e) != e or e < 1 for e in epochs):
    raise ConfigError(f'train.epochs ({config.train.epochs}) must be positive integers')
  return tuple(int(e) for e in epochs)


def _check_sizes(config, pool_size):
  initial, sizes = config.al.initial_size, tuple(config.al.query_sizes)
  if initial < 1 or any(q < 1 for q in sizes):
    raise ConfigError(f'al.initial_size ({initial}) and al.query_sizes ({sizes}) must be positive')
  total = initial + sum(sizes)
  if total > config.al.labeling_budget:
    raise ConfigError(
        f'al.query_sizes ({sizes}) with al.initial_size ({initial}) label {total} examples, more than '
        f'al.labeling_budget ({config.al.labeling_budget}); shrink the queries or raise the budget')
  if pool_size is not None and total > pool_size:
    raise ConfigError(
        f'al.query_sizes ({sizes}) with al.initial_size ({initial}) label {total} examples, more than '
        f'the pool holds ({pool_size}); shrink the queries')
  batch = config.train.batch_size
  if not 1 <= batch <= initial:
    raise ConfigError(
        f'train.batch_size ({batch}) must be between 1 and the initial labeled set '
        f'(al.initial_size = {initial}); lower the batch size or label more examples initially')
  return (initial, *sizes)


def _check_privacy(config, num_queries: int) -> tuple[str, float, bool]:
  p = config.privacy
  validate.choice('privacy.mode', p.mode, MODES)
  accounting.check_accountant(p.accountant)
  if not p.epsilon > 0 or math.isinf(p.epsilon):
    raise ConfigError(f'privacy.epsilon ({p.epsilon}) must be positive and finite')
  n = config.al.labeling_budget
  if not 0 < p.delta or p.delta * n > 1 + 1e-9:
    raise ConfigError(f'privacy.delta ({p.delta}) must be in (0, 1/n] with n = al.labeling_budget '
                      f'({n}), i.e. at most {1 / n:.3g}; lower it')
  validate.number('privacy.epsilon_al', p.epsilon_al, lo=0, allow_inf=True,
                  hint='0 or inf: non-private selection')
  private = num_queries > 0 and config.al.strategy != 'random' and 0 < p.epsilon_al < math.inf
  if private and p.epsilon_al >= p.epsilon:
    raise ConfigError(f'privacy.epsilon_al ({p.epsilon_al}) must be smaller than privacy.epsilon '
                      f'({p.epsilon}): training needs the rest')
  return p.mode, (p.epsilon_al if private else 0.0), private


FINETUNE_FIELD = 'privacy.epsilon_finetune'


def _finetunes(config, pool_size: int | None, num_phases: int) -> tuple[events.FinetunePass, ...]:
  """The fine-tuning passes of a DP run with train.finetune_confident (module docstring); () otherwise.

  Refuses what the passes are not accounted for: a mode other than 'cohort_exact', per-group budgets, a
  persistent ledger, and a missing or unaffordable privacy.epsilon_finetune."""
  p = config.privacy
  budget = p.get('epsilon_finetune', None)
  if not (p.enabled and config.train.get('finetune_confident', False)):
    if budget is not None and p.enabled:
      raise ConfigError(f'{FINETUNE_FIELD} ({budget}) is set but train.finetune_confident is off; unset '
                        f'{FINETUNE_FIELD} or set train.finetune_confident=True')
    return ()
  if budget is None or not 0 < budget < p.epsilon:
    raise ConfigError(f'train.finetune_confident under DP trains on pool points, which pay for it: set '
                      f'{FINETUNE_FIELD} to their budget, in (0, privacy.epsilon = {p.epsilon}), e.g. '
                      f'{p.epsilon / 8:g}; or set train.finetune_confident=False (got {budget!r})')
  for field, value in (('privacy.group_epsilon', p.get('group_epsilon')),
                       ('privacy.ledger_path', p.get('ledger_path'))):
    if value:
      raise ConfigError(f'train.finetune_confident under DP is not accounted with {field} yet; unset '
                        f'one of the two')
  if p.mode != 'cohort_exact':
    raise ConfigError(f'train.finetune_confident under DP needs privacy.mode \'cohort_exact\' (which plans '
                      f'the training on what the fine-tuning leaves), not {p.mode!r}')
  if pool_size is None:
    raise ValueError('planning fine-tuning under DP needs the pool size')
  batch = config.train.batch_size
  rate, steps = min(1.0, batch / pool_size), config.train.finetune_epochs * math.ceil(pool_size / batch)
  sigma = calibrate.noise_multiplier(budget, p.delta, [(rate, steps)] * num_phases, accountant=p.accountant)
  return tuple(events.FinetunePass(k, steps, sigma, rate) for k in range(num_phases))


def _check_mode_feasible(mode: str, problem: modes.Problem):
  if mode in ('step_ampl_prob', 'step_ampl_prob_noise', 'noise_red_prob'):
    for i in range(1, len(problem.cohort_sizes)):
      if problem.labeled[i] < 2 * problem.batch_size:
        raise ConfigError(
            f'train.batch_size ({problem.batch_size}) must be at most half the labeled set of phase {i} '
            f'({problem.labeled[i]}) in privacy.mode {mode!r} (the original fails there); lower it')
  if mode == 'cohort_exact' and problem.query_events:
    spent = accounting.epsilon(problem.query_events, problem.delta, problem.accountant)
    if spent >= problem.target_epsilon:
      raise ConfigError(
          f'privacy.epsilon_al ({problem.epsilon_al}) leaves the last cohort nothing to train with: '
          f'its queries alone cost ε = {spent:.3f} ≥ privacy.epsilon ({problem.target_epsilon})')


def _non_private_plan(config, cohort_sizes, epochs, mode, start) -> Plan:
  problem = modes.Problem(cohort_sizes, config.train.batch_size, epochs, math.inf, config.privacy.delta,
                          0.0, ())
  rates, steps = modes.naive_rates_and_steps(problem)
  phases = tuple(events.DpsgdPhase(k, s, 0.0, (q,) * (k + 1))
                 for k, (q, s) in enumerate(zip(rates, steps)))
  infinite = (math.inf,) * len(cohort_sizes)
  return Plan(mode=mode, accountant=config.privacy.accountant, target_epsilon=math.inf,
              epsilon_al=0.0, delta=config.privacy.delta,
              expected_batch_size=config.train.batch_size, cohort_sizes=cohort_sizes,
              phases=phases, queries=(), epsilon_per_cohort=infinite,
              epsilon_per_cohort_additive=infinite, epsilon_unlabeled=math.inf, private_queries=False,
              privacy_enabled=False, seconds=time.perf_counter() - start)


def _queries(p, epsilon_al: float, num_queries: int) -> tuple[events.QueryRound, ...]:
  """The T = `num_queries` rounds (after phases 0..T-1) of privacy.query_mechanism spending ε_AL."""
  mechanism = mechanisms.get(p.query_mechanism).for_budget(epsilon_al, num_queries, p.delta,
                                                           p.accountant)
  return tuple(events.QueryRound(k, mechanism) for k in range(num_queries))


def _check_groups(config, groups, problem: modes.Problem):
  """Refuses per-group targets that the mode, the dataset or the query budget cannot honour."""
  if groups is None:
    raise ConfigError(f'{groups_lib.FIELD} needs a dataset whose pool examples name their groups '
                      '(Dataset.groups, e.g. dataset.sites); unset it or choose such a dataset')
  if config.privacy.mode != 'cohort_exact':
    raise ConfigError(f'{groups_lib.FIELD} needs privacy.mode \'cohort_exact\' (one rate per unit), not '
                      f'{config.privacy.mode!r}; set it, or unset {groups_lib.FIELD}')
  if problem.query_events:
    spent = accounting.epsilon(problem.query_events, problem.delta, problem.accountant)
    if spent >= min(groups.targets):
      raise ConfigError(f'privacy.epsilon_al ({problem.epsilon_al}) leaves the tightest group nothing to '
                        f'train with: its queries alone cost ε = {spent:.3f} ≥ its target '
                        f'{min(groups.targets)} ({groups_lib.FIELD}); lower privacy.epsilon_al')


def affordable_queries(config, queries, prior) -> tuple:
  """The leading query rounds the never-labeled can pay on top of `prior` (all of them without a prior).

  Round k is affordable while ε(prior ∘ q_1 … q_k) < privacy.epsilon, the total budget; with
  al.fallback = 'random' while it is ≤ privacy.epsilon_al, the query budget (a pool example's selection
  spend over all campaigns), so that training keeps the rest. The rounds after are not paid: the run
  stops there, or (al.fallback) selects them uniformly at random, which costs the candidates nothing.
  Decided from public values only (the prior and the mechanisms), before anything is spent.
  """
  if not prior:
    return tuple(queries)
  p = config.privacy
  fallback = config.al.get('fallback', 'none') == 'random'
  out = []
  for query in queries:
    spent = accounting.epsilon([*prior, *(q.mechanism.dp_event() for q in out), query.mechanism.dp_event()],
                               p.delta, p.accountant)
    if (spent > p.epsilon_al * (1 + 1e-9)) if fallback else (spent >= p.epsilon):
      break
    out.append(query)
  return tuple(out)


def _auto_split(config, epsilon_al: float, start: float, **kwargs) -> Plan:
  """privacy.epsilon_al_split = 'auto': the plan at the query budget `split.choose` keeps (≤ epsilon_al)."""
  def plan_at(budget):
    fixed = config.copy_and_resolve_references()
    with fixed.unlocked():
      fixed.privacy.epsilon_al = float(budget)
      fixed.privacy.epsilon_al_split = 'fixed'
    return make_plan(fixed, **kwargs)
  plan, choice = split.choose(epsilon_al, plan_at)
  return dataclasses.replace(plan, epsilon_al_choice=choice, seconds=time.perf_counter() - start)


def make_plan(config, pool_size: int | None = None, groups: groups_lib.Groups | None = None,
              prior: Sequence = ()) -> Plan:
  """The privacy plan of `config` (see the module docstring); raises ConfigError when infeasible.

  `prior`: dp events every pool example already spent in earlier campaigns (`privacy.ledger_path`); it
  starts every cohort's history, and only the query rounds the never-labeled can still pay are planned
  as spent (`affordable_queries`).

  `groups`: the pool's groups with their targets (`groups.from_labels`), needed when
  privacy.group_epsilon is set and used only then.
  """
  start = time.perf_counter()
  accounting.quiet_dp_accounting()
  cohort_sizes = _check_sizes(config, pool_size)
  num_queries = len(cohort_sizes) - 1
  epochs = _epochs(config, num_queries + 1)
  mode, epsilon_al, private = _check_privacy(config, num_queries)
  if not config.privacy.enabled:
    return _non_private_plan(config, cohort_sizes, epochs, mode, start)
  if validate.choice('privacy.epsilon_al_split', config.privacy.get('epsilon_al_split', 'fixed'),
                     split.SPLITS) == 'auto' and private:
    return _auto_split(config, epsilon_al, start, pool_size=pool_size, groups=groups, prior=prior)
  p = config.privacy
  queries = _queries(p, epsilon_al, num_queries) if private else ()
  prior = tuple(prior)
  if prior and accounting.epsilon(prior, p.delta, p.accountant) >= p.epsilon:
    raise ConfigError(
        f'privacy.ledger_path {p.get("ledger_path")}: the pool examples left have already spent '
        f'ε = {accounting.epsilon(prior, p.delta, p.accountant):.4f} of privacy.epsilon ({p.epsilon}); '
        'nothing is left for a new campaign (python -m dpal_jax.ledger show PATH)')
  affordable = affordable_queries(config, queries, prior)
  finetunes = _finetunes(config, pool_size, num_queries + 1)
  every_unit = tuple(f.dp_event(events.Unit(0, None)) for f in finetunes)   # charged to every unit
  query_events = tuple(q.mechanism.dp_event() for q in affordable)
  if finetunes and accounting.epsilon([*prior, *every_unit, *query_events], p.delta,
                                      p.accountant) >= p.epsilon:
    raise ConfigError(f'{FINETUNE_FIELD} ({p.epsilon_finetune}) and privacy.epsilon_al ({epsilon_al}) leave '
                      f'the last cohort nothing to train with (together ≥ privacy.epsilon = {p.epsilon}); '
                      f'lower one of them')
  problem = modes.Problem(cohort_sizes, config.train.batch_size, epochs, p.epsilon, p.delta,
                          epsilon_al, query_events, p.accountant, prior=prior + every_unit)
  _check_mode_feasible(mode, problem)
  group_fields = {}
  if p.get('group_epsilon'):
    _check_groups(config, groups, problem)
    group_fields = dict(group_targets=dict(groups.group_targets), unit_groups=groups.signatures,
                        unit_targets=groups.targets,
                        unit_sizes=tuple(groups_lib.expected_unit_sizes(cohort_sizes, groups)))
    phases = cohort_exact.schedule(problem, groups.targets, group_fields['unit_sizes'])
  elif mode == 'cohort_exact':
    phases = cohort_exact.schedule(problem)
  else:
    phases = modes.original_schedule(problem, mode)

  labeled_at, targets, unit_groups = groups_lib.unit_layout(
      len(cohort_sizes), group_fields.get('unit_groups', ()), group_fields.get('unit_targets', ()))
  ledger = Ledger(p.accountant, p.delta, p.epsilon, labeled_at, allow_overspend=True, targets=targets,
                  groups=unit_groups, prior=(prior,) * len(labeled_at) if prior else ())
  for phase in phases:
    ledger.record(phase)
    if finetunes:
      ledger.record(finetunes[phase.phase])
    if phase.phase < len(affordable):
      ledger.record(affordable[phase.phase])
  per_round = epsilon_al / num_queries if num_queries else 0.0
  # Non-private selection by a strategy that reads the data leaves the never-labeled unbounded.
  bounded = private or not num_queries or config.al.strategy == 'random'
  unlabeled = ledger.epsilon_unlabeled() if bounded else math.inf
  additive = tuple(e + c * per_round for c, e in enumerate(ledger.training_epsilon_per_cohort()))
  return Plan(mode=mode, accountant=p.accountant, target_epsilon=p.epsilon,
              epsilon_al=p.epsilon_al if private else 0.0, delta=p.delta,
              expected_batch_size=config.train.batch_size, cohort_sizes=cohort_sizes, phases=phases,
              queries=queries, epsilon_per_cohort=tuple(ledger.epsilon_per_cohort()),
              epsilon_per_cohort_additive=additive, epsilon_unlabeled=unlabeled,
              private_queries=private, seconds=time.perf_counter() - start,
              epsilon_per_group=ledger.epsilon_per_group(), finetunes=finetunes, **group_fields)
