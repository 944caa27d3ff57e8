"""The privacy ledger: the raw privacy events actually spent, and each accounting unit's ε composed from them.

Units are cohorts here (`Ledger.for_cohorts`): cohort c, labeled before phase c, and one more unit for the
examples never labeled. Each event charges each unit what `events.py` says: a training phase k charges
cohort c ≤ k its own Poisson-subsampled Gaussian at `sample_rates[c]` (`steps` times; earlier phases cost
it nothing, it was not in the labeled set), a query after phase k charges every unit still unlabeled then
(cohorts c > k and the never-labeled) one run of its mechanism. A unit may start from spend before this
run (`prior`). Any number of events may come per phase. All of a unit's events are composed in one fresh
dp-accounting accountant (RDP or PLD), so training and queries add up in the same currency:

  ε(u) = ε_δ( prior(u) ∘ query events of u ∘ training events of u ).

`check` (and `check_phase`, `check_query`) refuses, with BudgetExceededError, an event that would take any
unit above the target, before it is spent, except in the original's modes, chosen on purpose
(`allow_overspend`).

`ledger.json` (schema `dpal_jax.ledger/1`) holds the raw events, so anyone can recompute every ε with
dp-accounting alone (event names below are dp-accounting's classes):
- `accountant` ('rdp' | 'pld'), `delta`, `target_epsilon` (null: no privacy), `allow_overspend`;
- `unit` ('cohort'), `labeled_at`: per unit, the phase before which it was labeled (null: never labeled;
  for cohorts [0, 1, …, C−1, null]);
- `prior`: [] or, per unit, dp-accounting events already spent, each {'dp_event': class name, its fields};
- `phases`: every DP-SGD phase {'phase', 'steps', 'noise_multiplier', 'sample_rates' (one per unit slot)}:
  unit u pays SelfComposedDpEvent(PoissonSampledDpEvent(sample_rates[u],
  GaussianDpEvent(noise_multiplier)), steps) when it has a slot and a rate > 0;
- `queries`: every query round {'after_phase', 'mechanism', its parameters}: unit u pays it when its
  labeled_at is null or > after_phase — 'laplace' {'epsilon'}: LaplaceDpEvent(1/epsilon); 'gaussian'
  {'noise_multiplier', 'sample_rate' (optional)}: GaussianDpEvent(noise_multiplier), inside
  PoissonSampledDpEvent(sample_rate, ·) when a sample rate is given;
- per-group budgets (`groups.py`; schema `dpal_jax.ledger/2`, written only then): `unit_targets`, per
  unit its own target ε (each unit is checked against its own), and `unit_groups`, per unit the names of
  the groups its examples belong to (a group's ε is the largest ε of its units);
- person-level DP (`dpsgd/persons.py`): `privacy_unit` 'person' (absent: 'record'), the members of every
  unit are persons, sampled and clipped as wholes, so each ε is a person's, whatever its records;
- `pate_rounds`: every PATE voting round {'round', 'aggregator', 'answered', 'tested', 'sigma1', 'sigma2',
  'threshold', 'laplace_scale'}: every unit (a teacher partition) pays
  SelfComposedDpEvent(GaussianDpEvent(sigma1), tested) ∘ SelfComposedDpEvent(answer, answered), answer =
  GaussianDpEvent(sigma2/√2) (GNMax family) or SelfComposedDpEvent(LaplaceDpEvent(laplace_scale), 2)
  ('lnmax'); absent from ledgers written before this kind existed;
- `finetunes` (only when recorded): every confident fine-tuning pass under DP {'after_phase', 'steps',
  'noise_multiplier', 'sample_rate'}: every unit, labeled or not, pays
  SelfComposedDpEvent(PoissonSampledDpEvent(sample_rate, GaussianDpEvent(noise_multiplier)), steps).
"""

import dataclasses
import json
import math
from collections.abc import Sequence

from dpal_jax.errors import BudgetExceededError
from dpal_jax.privacy import accounting
from dpal_jax.privacy import events as events_lib
from dpal_jax.privacy import groups as groups_lib
from dpal_jax.privacy.modes import ORIGINAL_MODES
from dpal_jax.privacy.plan import Plan

SCHEMA = 'dpal_jax.ledger/1'
SCHEMA_UNIT_TARGETS = 'dpal_jax.ledger/2'   # /1 plus per-unit targets and groups (readers of /1 refuse it)
TOLERANCE = 1e-6   # relative slack above the target (floating point), never more


@dataclasses.dataclass
class Ledger:
  """The spend of one run over its accounting units (see the module docstring).

  labeled_at: per unit, the phase before which it was labeled (None: never labeled).
  prior: () or, per unit, the dp-accounting events it spent before this ledger.
  events: per kind of `events.KINDS`, the events recorded, in order.
  targets: () (every unit's target is `target_epsilon`) or, per unit, its own target ε (per-group budgets).
  groups: () or, per unit, the names of the groups its examples belong to.
  privacy_unit: 'record', or 'person' when a unit's members are persons (person-level DP).
  """
  accountant: str
  delta: float
  target_epsilon: float
  labeled_at: tuple
  allow_overspend: bool = False
  unit: str = 'cohort'
  prior: tuple = ()
  events: dict = dataclasses.field(default_factory=lambda: {kind: [] for kind in events_lib.KINDS})
  targets: tuple = ()
  groups: tuple = ()
  privacy_unit: str = 'record'

  def __post_init__(self):
    accounting.check_accountant(self.accountant)
    self.labeled_at = tuple(self.labeled_at)
    self.prior = tuple(tuple(p) for p in self.prior)
    if self.privacy_unit not in ('record', 'person'):
      raise ValueError(f"privacy_unit {self.privacy_unit!r} is not 'record' or 'person'")
    self.targets = tuple(float(t) for t in self.targets)
    self.groups = tuple(tuple(g) for g in self.groups)
    for name, given in (('prior spend', self.prior), ('targets', self.targets), ('groups', self.groups)):
      if given and len(given) != len(self.labeled_at):
        raise ValueError(f'{name} is given for {len(given)} units, the ledger has {len(self.labeled_at)}')
    if any(t > self.target_epsilon for t in self.targets):
      raise ValueError(f'unit targets {self.targets} exceed the ledger\'s target ε {self.target_epsilon}')

  @classmethod
  def for_cohorts(cls, accountant: str, delta: float, target_epsilon: float, num_cohorts: int,
                  allow_overspend: bool = False, prior: Sequence = ()) -> 'Ledger':
    """Cohorts 0..num_cohorts−1 (cohort c labeled before phase c) and the never-labeled examples."""
    return cls(accountant, delta, target_epsilon, (*range(num_cohorts), None),
               allow_overspend=allow_overspend, prior=prior)

  @classmethod
  def from_plan(cls, plan: Plan) -> 'Ledger':
    """An empty ledger for `plan`; overspending is tolerated only for the original's modes."""
    labeled_at, targets, unit_groups = groups_lib.unit_layout(
        len(plan.cohort_sizes), plan.unit_groups, plan.unit_targets)
    return cls(plan.accountant, plan.delta, plan.target_epsilon, labeled_at,
               allow_overspend=plan.mode in ORIGINAL_MODES or not plan.privacy_enabled,
               targets=targets, groups=unit_groups)

  @property
  def units(self) -> tuple[events_lib.Unit, ...]:
    return tuple(events_lib.Unit(u, at) for u, at in enumerate(self.labeled_at))

  # What each unit has spent.

  def _epsilon(self, unit: events_lib.Unit, extra=None, kinds=tuple(events_lib.KINDS),
               prior=True) -> float:
    spent = list(self.prior[unit.index]) if prior and self.prior else []
    for kind in kinds:
      recorded = self.events[kind] + ([extra] if extra is not None and extra.kind == kind else [])
      spent += [event.dp_event(unit) for event in recorded]
    return accounting.epsilon(spent, self.delta, self.accountant)

  def epsilon_per_unit(self) -> list[float]:
    """Every unit's ε so far, in the order of `labeled_at`."""
    return [self._epsilon(u) for u in self.units]

  def epsilon_per_cohort(self) -> list[float]:
    """Each cohort's ε so far (its training phases and the queries it was exposed to); with groups the
    largest over the cohort's units."""
    return self._per_cohort(self._epsilon)

  def training_epsilon_per_cohort(self) -> list[float]:
    """Each cohort's ε from this run's training alone (the original reports only this)."""
    return self._per_cohort(lambda u: self._epsilon(u, kinds=(events_lib.DpsgdPhase.kind,), prior=False))

  def _per_cohort(self, epsilon_of) -> list[float]:
    out = {}
    for u in self.units:
      if u.labeled_at is not None:
        out[u.labeled_at] = max(out.get(u.labeled_at, -math.inf), epsilon_of(u))
    return [out[c] for c in sorted(out)]

  def target_of(self, unit: events_lib.Unit) -> float:
    """The unit's own target ε (`target_epsilon` without per-unit targets)."""
    return self.targets[unit.index] if self.targets else self.target_epsilon

  def epsilon_per_group(self) -> dict:
    """{group: ε(g)}, the largest ε of the units holding its examples ({} without groups)."""
    return groups_lib.epsilon_per_group(self.epsilon_per_unit(), self.groups) if self.groups else {}

  def epsilon_unlabeled(self) -> float:
    """ε of an example that was never labeled: every query, no training (the worst such unit)."""
    return max((self._epsilon(u) for u in self.units if u.labeled_at is None), default=0.0)

  # Spending.

  def _name(self, unit: events_lib.Unit) -> str:
    where = f' of groups {", ".join(self.groups[unit.index])}' if self.groups else ''
    if unit.labeled_at is None and self.unit == 'cohort':
      return f'the never-labeled examples{where}'
    return f'{self.unit} {unit.labeled_at if self.groups else unit.index}{where}'

  def _validate(self, event) -> None:
    if event.kind not in self.events:
      raise ValueError(f'{type(event).__name__} is not a kind of event this ledger records')
    if not isinstance(event, events_lib.DpsgdPhase):
      return
    phases = self.events[event.kind]
    last = phases[-1].phase if phases else -1
    if event.phase not in (last, last + 1) or event.phase < 0:
      raise ValueError(f'phase {event.phase} recorded out of order; the ledger\'s last phase is {last}')
    if len(event.sample_rates) > len(self.labeled_at):
      raise ValueError(f'phase {event.phase} gives {len(event.sample_rates)} sample rates for '
                       f'{len(self.labeled_at)} units')
    for unit in self.units:
      labeled = unit.labeled_at is not None and unit.labeled_at <= event.phase
      has_rate = unit.index < len(event.sample_rates)
      if labeled != has_rate and (labeled or event.sample_rates[unit.index] > 0):
        raise ValueError(f'phase {event.phase} needs one sample rate per {self.unit} labeled by then '
                         f'(0..{event.phase} for cohorts), got {len(event.sample_rates)}')

  def check(self, event) -> None:
    """Raises BudgetExceededError if recording `event` would take some unit above the target ε.

    Args:
      event: a privacy event of `events.KINDS` (a `DpsgdPhase`, a `QueryRound`).

    Raises:
      ValueError: the event does not fit the ledger (a phase out of order, rates for unlabeled units).
      BudgetExceededError: some unit's ε with the event would exceed its target (`target_of`)·(1 + 1e-6);
        the message names the unit. Never raised when `allow_overspend`.

    *Formal guarantees*: when this returns, every unit's history including `event`, composed in a fresh
    accountant of the ledger's kind, is at most its target ε at the ledger's δ (up to the 1e-6 relative
    slack); nothing is recorded either way.
    """
    self._validate(event)
    if self.allow_overspend:
      return
    spent = [(self._epsilon(u, extra=event), u) for u in self.units]
    over = [(eps, u) for eps, u in spent if eps > self.target_of(u) * (1 + TOLERANCE)]
    if over:
      worst, unit = max(over, key=lambda pair: pair[0])
      raise BudgetExceededError(
          f'{event.describe()} would take {self._name(unit)} to ε = {worst:.4f} > the target '
          f'{self.target_of(unit)} (δ = {self.delta}); nothing was spent. Use the plan made for this config '
          f'(python -m dpal_jax.plan) or name one of the original modes in privacy.mode on purpose')

  def record(self, event) -> None:
    """Records `event` after `check` (which refuses an overspend unless it is allowed)."""
    self.check(event)
    self.events[event.kind].append(event)

  def check_phase(self, phase: int, sample_rates: Sequence[float], noise_multiplier: float,
                  steps: int) -> None:
    """`check` of a training phase (see `check`)."""
    self.check(_phase(phase, sample_rates, noise_multiplier, steps))

  def record_phase(self, phase: int, sample_rates: Sequence[float], noise_multiplier: float,
                   steps: int) -> None:
    """Records a training phase (after checking it, unless overspending is allowed)."""
    self.record(_phase(phase, sample_rates, noise_multiplier, steps))

  def check_finetune(self, finetune: events_lib.FinetunePass) -> None:
    """`check` of a fine-tuning pass: would any unit, labeled or not, end above its target?"""
    self.check(finetune)

  def record_finetune(self, finetune: events_lib.FinetunePass) -> None:
    """Records a fine-tuning pass, charged to every unit."""
    self.record(finetune)

  def check_query(self, query: events_lib.QueryRound) -> None:
    """`check` of a query round: would an unlabeled example end above the target?"""
    self.check(query)

  def record_query(self, query: events_lib.QueryRound) -> None:
    """Records a query, charged to every unit still unlabeled after `query.after_phase`."""
    self.record(query)

  # Plain data.

  def to_dict(self) -> dict:
    out = {'schema': SCHEMA_UNIT_TARGETS if self.targets else SCHEMA, 'accountant': self.accountant,
           'delta': self.delta,
           'target_epsilon': None if math.isinf(self.target_epsilon) else self.target_epsilon,
           'allow_overspend': self.allow_overspend, 'unit': self.unit,
           'labeled_at': list(self.labeled_at),
           'prior': [[events_lib.dp_event_to_dict(e) for e in spent] for spent in self.prior]}
    if self.targets:
      out |= {'unit_targets': list(self.targets), 'unit_groups': [list(g) for g in self.groups]}
    if self.privacy_unit != 'record':
      out['privacy_unit'] = self.privacy_unit
    for kind, recorded in self.events.items():
      if recorded or kind not in events_lib.OPTIONAL_KINDS:
        out[kind] = [event.to_dict() for event in recorded]
    return out

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), allow_nan=False)

  @classmethod
  def from_dict(cls, data: dict) -> 'Ledger':
    if data.get('schema') not in (SCHEMA, SCHEMA_UNIT_TARGETS):
      raise ValueError(f'ledger schema {data.get("schema")!r} is not {SCHEMA!r} or '
                       f'{SCHEMA_UNIT_TARGETS!r}')
    target = data['target_epsilon']
    return cls(data['accountant'], data['delta'], math.inf if target is None else target,
               tuple(data['labeled_at']), allow_overspend=data['allow_overspend'], unit=data['unit'],
               prior=[[events_lib.dp_event_from_dict(e) for e in spent] for spent in data['prior']],
               events={kind: [cls_.from_dict(e) for e in data.get(kind, [])]
                       for kind, cls_ in events_lib.KINDS.items()},
               targets=data.get('unit_targets', ()), groups=data.get('unit_groups', ()),
               privacy_unit=data.get('privacy_unit', 'record'))

  @classmethod
  def from_json(cls, text: str) -> 'Ledger':
    return cls.from_dict(json.loads(text))


def _phase(phase, sample_rates, noise_multiplier, steps) -> events_lib.DpsgdPhase:
  return events_lib.DpsgdPhase(int(phase), int(steps), float(noise_multiplier),
                               tuple(float(q) for q in sample_rates))
