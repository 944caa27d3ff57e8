"""The Plan: the privacy schedule of one experiment as plain data (`plan.json`, schema dpal_jax.plan/1).

Phase k is the training after the k-th query (phase 0: the initial labeled set); cohort c is the set of
examples labeled before phase c. `phases[k].sample_rates[c]` is the Poisson rate of every example of
cohort c in phase k (c ≤ k); `queries[k-1]` is the query before phase k. Phases and queries are the
privacy events of `events.py` (`DpsgdPhase`, `QueryRound`), the same objects the ledger records. In JSON
an infinite ε (no privacy) is written as null; a query is {'after_phase', 'mechanism': its name, and the
mechanism's parameters}.
"""

import dataclasses
import json
import math

from dpal_jax.privacy import events

SCHEMA = 'dpal_jax.plan/1'


@dataclasses.dataclass(frozen=True)
class Plan:
  mode: str
  accountant: str
  target_epsilon: float
  epsilon_al: float
  delta: float
  expected_batch_size: int
  cohort_sizes: tuple
  phases: tuple                         # events.DpsgdPhase, one per phase
  queries: tuple                        # events.QueryRound, one per private query
  epsilon_per_cohort: tuple             # each cohort's true ε: own history, queries in the same accountant
  epsilon_per_cohort_additive: tuple    # the original's figure: training ε + the query ε added linearly
  epsilon_unlabeled: float              # an example never labeled: all queries, no training
  private_queries: bool                 # False: selection is free (random) or not private (ε_al 0 / inf)
  privacy_enabled: bool = True
  seconds: float = 0.0
  schema: str = SCHEMA
  # Per-group budgets (`groups.py`; absent from plan.json without groups): phase k's sample_rates hold
  # one rate per unit slot c·G + s of cohorts 0..k, for the G signatures in `unit_groups`.
  group_targets: dict = dataclasses.field(default_factory=dict)   # {group: its target ε}
  unit_groups: tuple = ()               # per signature s, its group names
  unit_targets: tuple = ()              # per signature s, its target: the tightest of its groups
  unit_sizes: tuple = ()                # per unit slot, the size planned for (|cohort c|·share of s)
  epsilon_per_group: dict = dataclasses.field(default_factory=dict)   # {group: planned ε}
  # privacy.epsilon_al_split = 'auto' (`split.py`; absent from plan.json otherwise): the query budgets
  # compared, their proxy, and the one chosen (= epsilon_al).
  epsilon_al_choice: dict = dataclasses.field(default_factory=dict)
  # Confident fine-tuning under DP (`train.finetune_confident`; absent from plan.json otherwise): one
  # events.FinetunePass after each phase, charged to every pool example, spending privacy.epsilon_finetune.
  finetunes: tuple = ()

  def __post_init__(self):
    if bool(self.unit_groups) != bool(self.unit_targets) or len(self.unit_groups) != len(self.unit_targets):
      raise ValueError('a plan with groups needs one target per signature (unit_groups, unit_targets)')

  @property
  def num_phases(self) -> int:
    return len(self.phases)

  def expected_batch(self, phase: int) -> float:
    """Σ_u q_u·|u|: the phase's expected Poisson batch size (units: cohorts, or the planned unit sizes)."""
    return self.phases[phase].expected_batch(self.unit_sizes or self.cohort_sizes)

  def exceeds_target(self, tolerance: float = 1e-6) -> bool:
    """True when some cohort (or, under private selection, the never-labeled remainder) ends above
    the target ε, or some group above its own."""
    limit = self.target_epsilon + tolerance
    unlabeled = (self.epsilon_unlabeled,) if self.private_queries else ()
    return (any(e > limit for e in (*self.epsilon_per_cohort, *unlabeled))
            or any(e > self.group_targets[g] + tolerance for g, e in self.epsilon_per_group.items()))

  def to_dict(self) -> dict:
    out = {'schema': self.schema}
    for field in dataclasses.fields(self):
      if field.name == 'schema':
        continue
      value = getattr(self, field.name)
      if field.name in _OPTIONAL_FIELDS and not value:
        continue
      if field.name in ('phases', 'queries', 'finetunes'):
        value = [event.to_dict() for event in value]
      elif isinstance(value, tuple):
        value = [_finite_or_none(v) for v in value]
      else:
        value = _finite_or_none(value)
      out[field.name] = value
    return out

  def to_json(self, indent: int | None = None) -> str:
    return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

  @classmethod
  def from_dict(cls, data: dict) -> 'Plan':
    if data.get('schema') != SCHEMA:
      raise ValueError(f'plan schema {data.get("schema")!r} is not {SCHEMA!r}')
    values = {}
    for field in dataclasses.fields(cls):
      if field.name not in data:
        continue
      value = data[field.name]
      if field.name == 'phases':
        value = tuple(events.DpsgdPhase.from_dict(p) for p in value)
      elif field.name == 'queries':
        value = tuple(events.QueryRound.from_dict(q) for q in value)
      elif field.name == 'finetunes':
        value = tuple(events.FinetunePass.from_dict(f) for f in value)
      elif field.name in ('target_epsilon', 'epsilon_al', 'epsilon_unlabeled'):
        value = _none_to_inf(value)
      elif field.name.startswith('epsilon_per_cohort'):
        value = tuple(_none_to_inf(v) for v in value)
      elif field.name == 'unit_groups':
        value = tuple(tuple(g) for g in value)
      elif isinstance(value, list):
        value = tuple(value)
      values[field.name] = value
    return cls(**values)

  @classmethod
  def from_json(cls, text: str) -> 'Plan':
    return cls.from_dict(json.loads(text))


_GROUP_FIELDS = ('group_targets', 'unit_groups', 'unit_targets', 'unit_sizes', 'epsilon_per_group')
_OPTIONAL_FIELDS = (*_GROUP_FIELDS, 'epsilon_al_choice', 'finetunes')   # left out of plan.json when empty


def _finite_or_none(value):
  if isinstance(value, float) and not math.isfinite(value):
    return None
  return value


def _none_to_inf(value):
  return math.inf if value is None else float(value)
