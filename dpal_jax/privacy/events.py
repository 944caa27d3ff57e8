"""Privacy events: every spend of a run in one representation, charged to accounting units.

An accounting unit u is a set of examples that share one privacy history: today a cohort (the examples
labeled by the same query, cohort 0 the initial set) or the examples never labeled; next a group, a
teacher's partition or a person. A unit has an index (its slot in a phase's sample rates) and
`labeled_at`, the phase before which it was labeled (None: never labeled). Each event E states what it
costs every unit as a dp-accounting event E(u) (NoOp for a unit it does not touch):

- `DpsgdPhase` (kind 'phases'): S steps of DP-SGD at noise multiplier σ with one Poisson rate q_u per
  unit, E(u) = (PoissonSampled(q_u, Gaussian(σ)))^S; a unit with rate 0 or without a slot pays nothing.
  Its expected batch is E[B] = Σ_u q_u·|u|.
- `QueryRound` (kind 'queries'): after phase k a selection mechanism (`privacy.mechanisms`) releases one
  noisy score per unlabeled candidate; E(u) = the mechanism's event for every u still unlabeled then
  (labeled_at(u) > k or None), NoOp for the labeled.
- `PateRound` (kind 'pate_rounds'): one round of PATE teacher votes; every unit (a teacher partition)
  takes part in every vote and pays the data-independent cost of the round (`privacy.pate_rdp`): one
  threshold test per tested query (Gaussian(σ₁)) and one aggregator answer per answered query (GNMax
  with noise σ₂: Gaussian(σ₂/√2), since one partition moves two vote counts by one; LNMax with Laplace
  scale b: two sensitivity-1 Laplace(b)).
- `FinetunePass` (kind 'finetunes'): confident fine-tuning after phase k under DP (`loops/finetune.py`):
  S DP-SGD steps at noise multiplier σ on the labeled set and the pool points the released model is
  confident on, with the model's labels. Whether a pool point takes part and with what label is a
  function of that point and the released (DP) model alone, so the pass is DP-SGD on a per-record
  transform of the pool, every pool example drawn at the same Poisson rate q when it takes part:
  E(u) = (PoissonSampled(q, Gaussian(σ)))^S for every unit, labeled or not (the worst case: each may
  be confident).
- Room for what comes next, each one more class here with `dp_event(unit)`, `describe()`, `to_dict`,
  `from_dict` and one line in KINDS: a label release.

A unit's ε is ε_δ of prior(u) ∘ E_1(u) ∘ … ∘ E_n(u) in one fresh dp-accounting accountant (`Ledger`),
where prior(u) is spend from before the run (persistent budgets), stored as raw dp-accounting events
(`dp_event_to_dict`).
"""

import dataclasses
from typing import ClassVar

import dp_accounting

from dpal_jax.privacy import accounting
from dpal_jax.privacy import mechanisms
from dpal_jax.privacy import pate_rdp


@dataclasses.dataclass(frozen=True)
class Unit:
  """One accounting unit: its slot in sample rates and the phase before which it was labeled."""
  index: int
  labeled_at: int | None


@dataclasses.dataclass(frozen=True)
class DpsgdPhase:
  """Training phase `phase`: `steps` DP-SGD steps at `noise_multiplier`, Poisson rate per unit.

  `sample_rates[u]` is the rate of every example of unit u (in a plan, cohorts 0..phase).
  """
  phase: int
  steps: int
  noise_multiplier: float
  sample_rates: tuple
  kind: ClassVar[str] = 'phases'

  def dp_event(self, unit: Unit) -> dp_accounting.DpEvent:
    """What this phase costs `unit`: its rate's Poisson-subsampled Gaussian, `steps` times."""
    if unit.index >= len(self.sample_rates):
      return dp_accounting.NoOpDpEvent()
    return accounting.dpsgd_event(self.sample_rates[unit.index], self.noise_multiplier, self.steps)

  def describe(self) -> str:
    return f'phase {self.phase}'

  def expected_batch(self, unit_sizes) -> float:
    """E[B] = Σ_u q_u·|u|, the expected Poisson batch (the divisor of the noisy gradient sum)."""
    return expected_batch(self.sample_rates, unit_sizes)

  def to_dict(self) -> dict:
    return dataclasses.asdict(self) | {'sample_rates': list(self.sample_rates)}

  @classmethod
  def from_dict(cls, data: dict) -> 'DpsgdPhase':
    return cls(**data | {'sample_rates': tuple(data['sample_rates'])})


def expected_batch(sample_rates, unit_sizes) -> float:
  """Σ_u q_u·|u|: the expected size of a Poisson batch drawn at rate q_u from each unit u."""
  return float(sum(q * n for q, n in zip(sample_rates, unit_sizes)))


@dataclasses.dataclass(frozen=True)
class QueryRound:
  """A selection round after `after_phase`, charged to every unit still unlabeled then.

  `mechanism` is the private release that scores the candidates (`privacy.mechanisms`); the same object
  runs the selection, so its noise is the noise accounted here.
  """
  after_phase: int
  mechanism: mechanisms.TopKMechanism
  kind: ClassVar[str] = 'queries'

  def describe(self) -> str:
    return f'query after phase {self.after_phase}'

  def charges(self, unit: Unit) -> bool:
    """Whether `unit` was still unlabeled, so scored, in this round."""
    return unit.labeled_at is None or unit.labeled_at > self.after_phase

  def dp_event(self, unit: Unit) -> dp_accounting.DpEvent:
    """The mechanism's event for a unit this round scored; NoOp for one already labeled."""
    return self.mechanism.dp_event() if self.charges(unit) else dp_accounting.NoOpDpEvent()

  def to_dict(self) -> dict:
    return {'after_phase': self.after_phase, **mechanisms.to_dict(self.mechanism)}

  @classmethod
  def from_dict(cls, data: dict) -> 'QueryRound':
    data = dict(data)
    return cls(data.pop('after_phase'), mechanisms.from_dict(data))


PATE_AGGREGATORS = pate_rdp.AGGREGATORS


@dataclasses.dataclass(frozen=True)
class PateRound:
  """Round `round` of PATE votes: `tested` threshold tests and `answered` teacher answers.

  aggregator: 'lnmax' (Laplace scale `laplace_scale` on every count), 'gnmax' (Gaussian `sigma2`),
    'confident_gnmax' / 'interactive_gnmax' (a threshold test at `threshold` with noise `sigma1` on every
    tested query, a GNMax answer with `sigma2` on those that pass; Papernot et al. 2018, Alg. 1 / 2).
  answered: the queries the teachers answered (for the thresholded aggregators, those that passed the
    test; a query the student labels itself in Interactive-GNMax is tested, not answered).
  tested: the threshold tests run (0 for 'lnmax' and 'gnmax').

  Every unit pays threshold_event(σ₁)^tested ∘ answer^answered (`privacy.pate_rdp`): the guaranteed,
  data-independent cost. Data-dependent bounds are reported elsewhere, never charged here.
  """
  round: int
  aggregator: str
  answered: int
  tested: int = 0
  sigma1: float | None = None
  sigma2: float | None = None
  threshold: float | None = None
  laplace_scale: float | None = None
  kind: ClassVar[str] = 'pate_rounds'

  def __post_init__(self):
    if self.aggregator not in PATE_AGGREGATORS:
      raise ValueError(f'PATE aggregator {self.aggregator!r} is unknown; choose one of {PATE_AGGREGATORS}')
    thresholded = self.aggregator in pate_rdp.THRESHOLDED
    needed = {'lnmax': ('laplace_scale',), 'gnmax': ('sigma2',)}.get(
        self.aggregator, ('sigma1', 'sigma2', 'threshold'))
    for name in ('sigma1', 'sigma2', 'threshold', 'laplace_scale'):
      value = getattr(self, name)
      if (value is None) == (name in needed):
        raise ValueError(f'PATE round {self.round} ({self.aggregator}): {name} must be '
                         f'{"given" if name in needed else "None"}')
      if name in needed and name != 'threshold' and not value > 0:
        raise ValueError(f'PATE round {self.round}: {name} must be > 0, got {value}')
    if self.answered < 0 or self.tested < 0:
      raise ValueError(f'PATE round {self.round}: answered and tested must be ≥ 0')
    if thresholded and self.answered > self.tested:
      raise ValueError(f'PATE round {self.round}: {self.answered} answered but only {self.tested} '
                       'tested; every answer passes a threshold test first')
    if not thresholded and self.tested:
      raise ValueError(f'PATE round {self.round}: {self.aggregator} runs no threshold test, tested '
                       f'must be 0')

  def describe(self) -> str:
    return f'PATE round {self.round}'

  def charges(self, unit: Unit) -> bool:
    """Every unit: each teacher partition takes part in every vote."""
    del unit
    return True

  def dp_event(self, unit: Unit) -> dp_accounting.DpEvent:
    """What the round costs every unit: the threshold tests, then the answers (`pate_rdp.round_event`)."""
    del unit
    return pate_rdp.round_event(self.aggregator, self.answered, self.tested, sigma1=self.sigma1,
                                sigma2=self.sigma2, laplace_scale=self.laplace_scale)

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, data: dict) -> 'PateRound':
    return cls(**data)


@dataclasses.dataclass(frozen=True)
class FinetunePass:
  """Confident fine-tuning after phase `after_phase` under DP: `steps` DP-SGD steps at `noise_multiplier`,
  every pool example at Poisson rate `sample_rate` (module docstring); charged to every unit."""
  after_phase: int
  steps: int
  noise_multiplier: float
  sample_rate: float
  kind: ClassVar[str] = 'finetunes'

  def __post_init__(self):
    if not (0 < self.sample_rate <= 1 and self.noise_multiplier > 0 and self.steps >= 1):
      raise ValueError(f'fine-tuning pass after phase {self.after_phase}: sample_rate must be in (0, 1], '
                       f'noise_multiplier > 0 and steps ≥ 1, got {self.sample_rate}, '
                       f'{self.noise_multiplier}, {self.steps}')

  def describe(self) -> str:
    return f'fine-tuning after phase {self.after_phase}'

  def charges(self, unit: Unit) -> bool:
    """Every unit: a pool example labeled or not may be in the confident set."""
    del unit
    return True

  def dp_event(self, unit: Unit) -> dp_accounting.DpEvent:
    """The pass's Poisson-subsampled Gaussian, `steps` times, for every unit."""
    del unit
    return accounting.dpsgd_event(self.sample_rate, self.noise_multiplier, self.steps)

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, data: dict) -> 'FinetunePass':
    return cls(int(data['after_phase']), int(data['steps']), float(data['noise_multiplier']),
               float(data['sample_rate']))


# Event kinds by their key in plan.json / ledger.json, in the order a unit's events are composed (a fixed
# order, so that ε is the same to the last bit however the events were recorded).
KINDS = {cls.kind: cls for cls in (QueryRound, DpsgdPhase, PateRound, FinetunePass)}
# Kinds written to ledger.json only when recorded (ledgers without them read as before).
OPTIONAL_KINDS = (FinetunePass.kind,)


def dp_event_to_dict(event: dp_accounting.DpEvent) -> dict:
  """A dp-accounting event as plain data: {'dp_event': class name, field: value, …}, nested events alike.

  >>> dp_event_to_dict(dp_accounting.PoissonSampledDpEvent(0.1, dp_accounting.GaussianDpEvent(2.0)))
  {'dp_event': 'PoissonSampledDpEvent', 'sampling_probability': 0.1, 'event': {'dp_event': \
'GaussianDpEvent', 'noise_multiplier': 2.0}}
  """
  return _plain(event.to_named_tuple())


def dp_event_from_dict(data: dict) -> dp_accounting.DpEvent:
  """The dp-accounting event `dp_event_to_dict` wrote."""
  data = dict(data)
  cls = getattr(dp_accounting, str(data.pop('dp_event', None)), None)
  if not (isinstance(cls, type) and issubclass(cls, dp_accounting.DpEvent)):
    raise ValueError(f'{data} does not name a dp-accounting event')
  return cls(**{k: _event_or_value(v) for k, v in data.items()})


def _plain(value):
  if hasattr(value, 'class_name'):   # dp-accounting's named-tuple form of an event
    fields = value._asdict()
    del fields['module_name']
    return {'dp_event': fields.pop('class_name'), **{k: _plain(v) for k, v in fields.items()}}
  if isinstance(value, (list, tuple)):
    return [_plain(v) for v in value]
  return value


def _event_or_value(value):
  if isinstance(value, dict):
    return dp_event_from_dict(value)
  if isinstance(value, list):
    return [_event_or_value(v) for v in value]
  return value
