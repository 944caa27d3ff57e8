"""A run as one campaign on a pool's persistent ledger (`privacy.ledger_path`; docs/budgets.md).

`Campaign(config, pool_size, pool_id)` reads the pool ledger (`privacy.ledger_store`) without writing:
the run's candidates (pool examples no closed campaign labeled) and, provisionally from the closed
campaigns alone, the prior every unit of the run starts from (`ledger_store.prior_of` the candidates).
The loop plans from them. Then, under the workdir lock:
- `reserve(workdir, plan, plan_for)`: under the pool ledger's lock, re-reads it; a run resumed in the same
  workdir finds its own reservation and keeps its candidates and prior (so its plan is the one it
  committed); a new run takes the candidates and prior as they are now (another campaign may have
  reserved since they were read: the plan is then made again) and appends its reservation: per unit the
  worst case of its plan. Nothing is spent before this record is on disk;
- `record(kind, …)`: after each committed stage ('spend') and when the run ends ('close': this releases
  what the reservation held beyond the spend).
"""

import dataclasses
import json
import os
import re
import secrets
import time

import numpy as np

from dpal_jax import distributed
from dpal_jax.data.pool import Pool
from dpal_jax.errors import ConfigError
from dpal_jax.loops import protocol
from dpal_jax.privacy import events as events_lib
from dpal_jax.privacy import ledger_store
from dpal_jax.privacy import planner
from dpal_jax.privacy.ledger import Ledger


def unit_events(ledger: Ledger, unit: events_lib.Unit) -> list:
  """The dp events `ledger` charged `unit` in this run (its prior excluded, no-ops left out)."""
  out = []
  for kind in events_lib.KINDS:
    for event in ledger.events[kind]:
      spent = event.dp_event(unit)
      if spent.to_named_tuple().class_name != 'NoOpDpEvent':
        out.append(spent)
  return out


def unit_name(ledger: Ledger, unit: events_lib.Unit) -> str:
  """'cohort c' (labeled before phase c) or 'never labeled', with the unit's groups when it has any."""
  name = 'never labeled' if unit.labeled_at is None else f'cohort {unit.labeled_at}'
  groups = getattr(ledger, 'groups', ())
  return name + (f' of groups {", ".join(groups[unit.index])}' if groups else '')


def planned_worst_case(plan, queries) -> list[list[dict]]:
  """Per unit of `plan`, every event the run may charge it — all phases and the query rounds it can pay
  (`queries`: the others are never spent) — as dp event dicts."""
  ledger = Ledger.from_plan(plan)
  ledger.allow_overspend = True
  for phase in plan.phases:
    ledger.record(phase)
  for query in queries:
    ledger.record(query)
  return [ledger_store.events_to_json(unit_events(ledger, unit)) for unit in ledger.units]


class Campaign:
  """The run's link to its pool ledger (see the module docstring)."""

  def __init__(self, config, pool_size: int, pool_id: str):
    self.store = ledger_store.Store(config.privacy.ledger_path)
    self.config, self.pool_size, self.pool_id = config, pool_size, pool_id
    self.name = None
    # Provisional: open campaigns (a concurrent run, or this run's own reservation when it resumes) are
    # left out here; `reserve` re-reads everything under the lock and plans again if that changes anything.
    records = self.store.records()
    self._check_budget(records)
    self.candidates, self.prior = self._current(ledger_store.without_open(records))

  def _check_budget(self, records) -> None:
    found = ledger_store.budget(records)
    if found is None:
      return
    p = self.config.privacy
    wanted = {'pool': self.pool_id, 'pool_size': self.pool_size, 'accountant': p.accountant,
              'delta': p.delta, 'target_epsilon': p.epsilon}
    for field, value in wanted.items():
      if found[field] != value:
        name = {'pool': 'dataset', 'pool_size': 'dataset'}.get(field, f'privacy.{field}')
        name = 'privacy.epsilon' if field == 'target_epsilon' else name
        raise ConfigError(
            f'privacy.ledger_path {self.store.path} holds the budget of {field} {found[field]!r}, this '
            f'run has {value!r}; set {name} to match the pool\'s ledger, or name another ledger_path')

  def _current(self, records):
    self._check_budget(records)
    taken = ledger_store.labeled_by_closed(records, self.pool_size)
    candidates = np.flatnonzero(~taken).astype(np.int64)
    return candidates, ledger_store.prior_of(records, self.pool_size, candidates)

  def _mine(self, records, workdir: str):
    for campaign in ledger_store.campaigns(records):
      if campaign.reserve['workdir'] == os.path.realpath(workdir):
        return campaign
    return None

  def reserve(self, workdir: str, plan, plan_for):
    """Reserves the worst case of the plan to run (see the module docstring) and returns that plan.

    `plan` was made from the candidates and prior read first; `plan_for(candidates, prior)` makes it
    again, called only when they changed since (another campaign reserved or closed, or this run
    resumes its own reservation).
    """
    with self.store.locked():
      records = self.store.records()
      mine = self._mine(records, workdir)
      if mine is not None:
        candidates = np.asarray(mine.reserve['candidates'], np.int64)
        prior = ledger_store.events_from_json(mine.reserve['prior'])
      else:
        candidates, prior = self._current(records)
      if (not np.array_equal(candidates, self.candidates) or
          ledger_store.events_to_json(prior) != ledger_store.events_to_json(self.prior)):
        self.candidates, self.prior = candidates, prior
        plan = plan_for(candidates, prior)
      if mine is not None:
        self.name = mine.name
        return plan
      self.name = f'{time.strftime("%Y%m%dT%H%M%S")}-{secrets.token_hex(4)}'
      p = self.config.privacy
      self.store.append('reserve', self.name, workdir=os.path.realpath(workdir), pool=self.pool_id,
                        pool_size=self.pool_size, accountant=p.accountant, delta=p.delta,
                        target_epsilon=p.epsilon, candidates=self.candidates.tolist(),
                        prior=ledger_store.events_to_json(self.prior),
                        planned=planned_worst_case(
                            plan, planner.affordable_queries(self.config, plan.queries, self.prior)))
      return plan

  def record(self, kind: str, pool, ledger: Ledger, stage: int, stopped: dict | None = None,
             signature_of: np.ndarray | None = None) -> None:
    """A 'spend' (committed stage) or 'close' (run ended) record of the run's units.

    With per-group units (`ledger.groups`: slots c·G + s, then the never-labeled of each signature s)
    `signature_of` (the signature of every pool example) gives each unit its members.
    """
    if ledger.groups and signature_of is None:
      raise ValueError('a ledger with groups needs the signature of every pool example to name its units')
    num_sigs = max(1, len({g for g in ledger.groups})) if ledger.groups else 1
    labeled_cohorts = sum(1 for u in ledger.units if u.labeled_at is not None) // num_sigs
    rest = np.setdiff1d(self.candidates, pool.labeled)
    units, epsilons = [], ledger.epsilon_per_unit()
    for unit in ledger.units:
      if unit.labeled_at is not None and unit.labeled_at >= pool.num_cohorts:
        continue   # not labeled yet: its members are still among the rest
      members = rest if unit.labeled_at is None else pool.labeled[pool.cohorts == unit.labeled_at]
      if ledger.groups:
        sig = unit.index % num_sigs if unit.labeled_at is not None else unit.index - labeled_cohorts * num_sigs
        members = members[signature_of[members] == sig]
      elif unit.labeled_at is None:
        members = None   # the candidates no unit labeled
      units.append({'unit': unit.index, 'name': unit_name(ledger, unit),
                    'members': None if members is None else members.tolist(),
                    'events': ledger_store.events_to_json(unit_events(ledger, unit)),
                    'epsilon': epsilons[unit.index]})
    with self.store.locked():
      self.store.append(kind, self.name, stage=stage, units=units, stopped=stopped)


def pool_id(config) -> str:
  """The pool a ledger belongs to: the dataset section that defines it (public settings only)."""
  d = config.dataset
  return json.dumps({k: d.get(k) for k in ('name', 'test_size', 'noise', 'noise_mult', 'image_size')},
                    sort_keys=True)


# What the DP-AL loop asks of its campaign; each is the loop's old behaviour when there is none (None).

def from_config(config, pool_size: int) -> Campaign | None:
  """The run's campaign when privacy.ledger_path is set (ConfigError where it cannot apply), else None."""
  if not config.privacy.get('ledger_path'):
    return None
  if not config.privacy.enabled or config.privacy.mode != 'cohort_exact':
    raise ConfigError('privacy.ledger_path needs privacy.enabled and privacy.mode \'cohort_exact\' (the '
                      'original\'s modes may overspend); set them, or unset privacy.ledger_path')
  if distributed.runtime().multi_process:
    raise ConfigError('privacy.ledger_path is for single-process runs (each process would reserve): run '
                      'the campaign on one process, or unset privacy.ledger_path')
  if config.privacy.get('group_epsilon') or config.dataset.get('max_records_per_person'):
    raise ConfigError('privacy.ledger_path does not yet combine with per-group budgets or persons '
                      '(privacy.group_epsilon, dataset.max_records_per_person): the pool ledger names its '
                      'units by cohort; unset one of them')
  return Campaign(config, pool_size, pool_id(config))


def pool_view(campaign: Campaign | None) -> tuple[np.ndarray | None, list]:
  """(candidates, prior): (None, []) without a campaign."""
  return (None, []) if campaign is None else (campaign.candidates, campaign.prior)


def initial_pool(campaign: Campaign | None, pool_size: int, initial_size: int, rng) -> Pool:
  """Cohort 0, drawn uniformly from the campaign's candidates (from the whole pool without one)."""
  if campaign is None:
    return Pool.initial(pool_size, initial_size, rng)
  if not 1 <= initial_size <= len(campaign.candidates):
    raise ConfigError(f'al.initial_size ({initial_size}) must be between 1 and the pool examples the '
                      f'ledger leaves as candidates ({len(campaign.candidates)})')
  labeled = rng.choice(campaign.candidates, size=initial_size, replace=False)
  return Pool(pool_size, labeled, np.zeros(initial_size, np.int32))


def run_ledger(campaign: Campaign | None, plan) -> Ledger:
  """The run's ledger for `plan`, every unit starting from the campaign's prior."""
  ledger = Ledger.from_plan(plan)
  if campaign is None or not campaign.prior:
    return ledger
  return dataclasses.replace(ledger, prior=(tuple(campaign.prior),) * len(ledger.labeled_at))


def candidates(campaign: Campaign | None, pool: Pool) -> np.ndarray:
  """The unlabeled examples a query may score: the campaign's candidates not labeled yet."""
  unlabeled = pool.unlabeled()
  return unlabeled if campaign is None else np.intersect1d(unlabeled, campaign.candidates)


def _reason(error: Exception) -> tuple[str | None, str]:
  text = str(error).split('; nothing was spent')[0]
  found = re.search(r'would take (.+?) to ε', text)
  return (found.group(1) if found else None), text


def stop(state, at: str, error: Exception):
  """The state and release of a refused step: nothing spent, the run ends with what it has."""
  unit, reason = _reason(error)
  stopped = {'stage': state.stage + 1, 'at': at, 'unit': unit, 'reason': reason}
  log = (f'Stopped before {at}: {reason}. Nothing was spent; the run ends with what it has '
         '(privacy.ledger_path).')
  return state.replace(stopped=stopped), protocol.Release(log)


def unpaid_reason(campaign: Campaign | None, config, plan, phase: int) -> str:
  """'' when private query `phase` can be paid (always without a campaign); else why not, public values
  only: the rounds after `planner.affordable_queries` (the total budget, or with al.fallback = 'random'
  the query budget privacy.epsilon_al, each counted with the prior) are never spent."""
  if campaign is None or not plan.private_queries:
    return ''
  paid = planner.affordable_queries(config, plan.queries, campaign.prior)
  if phase <= len(paid):
    return ''
  spent = ledger_store.epsilon([*campaign.prior, *(q.mechanism.dp_event() for q in paid),
                                plan.queries[phase - 1].mechanism.dp_event()], plan.delta, plan.accountant)
  limit = (f'the query budget privacy.epsilon_al {config.privacy.epsilon_al}' if config.al.fallback == 'random'
           else f'the target {config.privacy.epsilon}')
  return (f'query after phase {phase - 1} would take the never-labeled examples to ε = {spent:.4f} > '
          f'{limit} (δ = {plan.delta})')


def fallback_note(reason: str) -> str:
  """The query log line's note when selection falls back to random."""
  return (f' The query budget is spent ({reason}): selected uniformly at random instead (al.fallback = '
          '\'random\': independent of the data, it costs the candidates nothing).')


def fallback_rounds(plan, state) -> list[int]:
  """The query rounds that fell back to random selection (1-based)."""
  if not plan.private_queries or state.pool is None:
    return []
  paid = {q.after_phase for q in state.ledger.events[events_lib.QueryRound.kind]}
  return [k for k in range(1, state.pool.num_cohorts) if k - 1 not in paid]


def summary(campaign: Campaign | None, plan, state, config) -> dict:
  """summary.json's 'budget' section ({} with neither a ledger nor a fallback)."""
  if campaign is None and config.al.get('fallback', 'none') == 'none':
    return {}
  return {'budget': {
      'ledger_path': None if campaign is None else campaign.store.path,
      'campaign': None if campaign is None else campaign.name,
      'candidates': None if campaign is None else int(len(campaign.candidates)),
      'prior_epsilon': (0.0 if campaign is None or not campaign.prior else
                        ledger_store.epsilon(campaign.prior, plan.delta, plan.accountant)),
      'stopped_early': state.stopped is not None, 'stopped': state.stopped,
      'fallback_queries': fallback_rounds(plan, state)}}


def record(campaign: Campaign | None, kind: str, state) -> None:
  """The campaign's 'spend' or 'close' record of `state` (the coordinator writes it)."""
  if campaign is not None and distributed.is_coordinator():
    campaign.record(kind, state.pool, state.ledger, state.stage, state.stopped)
