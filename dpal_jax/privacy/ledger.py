"""The privacy ledger: the raw DP events actually spent, and each cohort's ε composed from them.

Cohort c (labeled before phase c) is charged
- every training phase k ≥ c at its own Poisson rate `sample_rates[c]` (a Poisson-subsampled Gaussian
  self-composed `steps` times; earlier phases cost it nothing: it was not in the labeled set), and
- every query run while it was still unlabeled, i.e. the queries with `after_phase < c`.
Examples never labeled are charged every query and nothing else. All of a cohort's events are
composed in one fresh dp-accounting accountant (RDP or PLD), so training and queries add up in the
same currency. The ledger is plain data: its JSON holds the raw events, so anyone can recompute every
ε with dp-accounting alone.
"""

import dataclasses
import json
import math
from collections.abc import Sequence

from dpal_jax.errors import BudgetExceededError
from dpal_jax.privacy import accounting
from dpal_jax.privacy.modes import ORIGINAL_MODES
from dpal_jax.privacy.plan import Plan
from dpal_jax.privacy.plan import Query
from dpal_jax.privacy.query_events import query_event

TOLERANCE = 1e-6   # relative slack above the target (floating point), never more


@dataclasses.dataclass
class Ledger:
  accountant: str
  delta: float
  target_epsilon: float
  num_cohorts: int
  allow_overspend: bool = False
  phases: list = dataclasses.field(default_factory=list)   # {'phase', 'sample_rates', σ, 'steps'}
  queries: list = dataclasses.field(default_factory=list)  # Query fields

  def __post_init__(self):
    accounting.check_accountant(self.accountant)

  @classmethod
  def from_plan(cls, plan: Plan) -> 'Ledger':
    """An empty ledger for `plan`; overspending is tolerated only for the original's modes."""
    return cls(plan.accountant, plan.delta, plan.target_epsilon, len(plan.cohort_sizes),
               allow_overspend=plan.mode in ORIGINAL_MODES or not plan.privacy_enabled)

  # What each cohort has spent.

  def _query_list(self, extra=None) -> list[Query]:
    return [Query(**q) for q in self.queries] + ([extra] if extra else [])

  def _events(self, cohort: int, phases: Sequence[dict], queries: Sequence[Query], training=True,
              private_queries=True) -> list:
    events = [query_event(q) for q in queries if q.after_phase < cohort] if private_queries else []
    if training:
      events += [accounting.dpsgd_event(p['sample_rates'][cohort], p['noise_multiplier'], p['steps'])
                 for p in phases if p['phase'] >= cohort]
    return events

  def _epsilons(self, phases, queries, training=True, private_queries=True) -> list[float]:
    return [accounting.epsilon(self._events(c, phases, queries, training, private_queries),
                               self.delta, self.accountant)
            for c in range(self.num_cohorts)]

  def epsilon_per_cohort(self) -> list[float]:
    """Each cohort's ε so far: its training phases and the queries it was exposed to, composed."""
    return self._epsilons(self.phases, self._query_list())

  def training_epsilon_per_cohort(self) -> list[float]:
    """Each cohort's ε from training alone (the original reports only this)."""
    return self._epsilons(self.phases, [], private_queries=False)

  def epsilon_unlabeled(self) -> float:
    """ε of an example that was never labeled: every query, no training."""
    events = [query_event(q) for q in self._query_list()]
    return accounting.epsilon(events, self.delta, self.accountant)

  # Spending.

  def _phase_dict(self, phase, sample_rates, noise_multiplier, steps) -> dict:
    if phase != len(self.phases):
      raise ValueError(f'phase {phase} recorded out of order; the ledger holds {len(self.phases)} phases')
    if len(sample_rates) != phase + 1:
      raise ValueError(f'phase {phase} needs one sample rate per cohort 0..{phase}, '
                       f'got {len(sample_rates)}')
    if not 0 <= phase < self.num_cohorts:
      raise ValueError(f'phase {phase} is outside 0..{self.num_cohorts - 1}')
    return {'phase': int(phase), 'sample_rates': [float(q) for q in sample_rates],
            'noise_multiplier': float(noise_multiplier), 'steps': int(steps)}

  def _check(self, phases, queries, what: str):
    if self.allow_overspend:
      return
    limit = self.target_epsilon * (1 + TOLERANCE)
    spent = self._epsilons(phases, queries)
    spent.append(accounting.epsilon([query_event(q) for q in queries], self.delta, self.accountant))
    worst = max(range(len(spent)), key=spent.__getitem__)
    if spent[worst] > limit:
      who = f'cohort {worst}' if worst < self.num_cohorts else 'the never-labeled examples'
      raise BudgetExceededError(
          f'{what} would take {who} to ε = {spent[worst]:.4f} > the target {self.target_epsilon} '
          f'(δ = {self.delta}); nothing was spent. Use the plan made for this config '
          f'(python -m dpal_jax.plan) or name one of the original modes in privacy.mode on purpose')

  def check_phase(self, phase: int, sample_rates: Sequence[float], noise_multiplier: float,
                  steps: int) -> None:
    """Raises BudgetExceededError if recording this phase would take a cohort above the target."""
    entry = self._phase_dict(phase, sample_rates, noise_multiplier, steps)
    self._check(self.phases + [entry], self._query_list(), f'phase {phase}')

  def record_phase(self, phase: int, sample_rates: Sequence[float], noise_multiplier: float,
                   steps: int) -> None:
    """Records a training phase (after checking it, unless overspending is allowed)."""
    self.check_phase(phase, sample_rates, noise_multiplier, steps)
    self.phases.append(self._phase_dict(phase, sample_rates, noise_multiplier, steps))

  def check_query(self, query: Query) -> None:
    """Raises BudgetExceededError if this query would take an unlabeled example above the target."""
    query_event(query)  # validates the parameters
    self._check(self.phases, self._query_list(query), f'query after phase {query.after_phase}')

  def record_query(self, query: Query) -> None:
    """Records a query, charged to every cohort labeled after `query.after_phase`."""
    self.check_query(query)
    self.queries.append({k: v for k, v in dataclasses.asdict(query).items() if v is not None})

  # Plain data.

  def to_dict(self) -> dict:
    out = dataclasses.asdict(self)
    out['target_epsilon'] = None if math.isinf(self.target_epsilon) else self.target_epsilon
    return out

  def to_json(self) -> str:
    return json.dumps(self.to_dict(), allow_nan=False)

  @classmethod
  def from_dict(cls, data: dict) -> 'Ledger':
    data = dict(data)
    if data.get('target_epsilon') is None:
      data['target_epsilon'] = math.inf
    return cls(**data)

  @classmethod
  def from_json(cls, text: str) -> 'Ledger':
    return cls.from_dict(json.loads(text))
