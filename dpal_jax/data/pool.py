"""The active-learning pool: which pool examples are labeled, in which order, and in which cohort.

Cohort c is the set labeled before phase c: cohort 0 is the initial labeled set, cohort c >= 1 the
examples the c-th query selected. Privacy is accounted per cohort (every member of a cohort has taken
part in the same phases with the same rates), so the plan gives one Poisson rate per cohort and
`sample_rates` spreads it over the labeled examples. Frozen and JSON-serialisable: it is checkpointed
with the parameters it belongs to.
"""

import dataclasses
import json
from collections.abc import Sequence

import numpy as np

from dpal_jax.errors import ConfigError

SCHEMA = 'dpal_jax.pool/1'


@dataclasses.dataclass(frozen=True, eq=False)
class Pool:
  """`labeled`: int64 indices into x_train in labeling order; `cohorts`: int32 cohort of each."""
  pool_size: int
  labeled: np.ndarray
  cohorts: np.ndarray

  def __post_init__(self):
    labeled = np.array(self.labeled, dtype=np.int64).reshape(-1)
    cohorts = np.array(self.cohorts, dtype=np.int32).reshape(-1)
    if len(labeled) != len(cohorts):
      raise ValueError(f'Pool: {len(labeled)} labeled indices but {len(cohorts)} cohort entries')
    _check_new_indices(labeled, self.pool_size, np.zeros(0, np.int64))
    steps = np.diff(cohorts)
    if len(cohorts) and (cohorts[0] != 0 or not np.all((steps == 0) | (steps == 1))):
      raise ValueError('Pool: cohorts must start at 0 and grow by 0 or 1 along `labeled` '
                       f'(labeling order), got cohorts {np.unique(cohorts).tolist()[:20]} '
                       f'starting with {cohorts[0]}')
    labeled.setflags(write=False)
    cohorts.setflags(write=False)
    object.__setattr__(self, 'pool_size', int(self.pool_size))
    object.__setattr__(self, 'labeled', labeled)
    object.__setattr__(self, 'cohorts', cohorts)

  @classmethod
  def initial(cls, pool_size: int, initial_size: int, rng: np.random.Generator) -> 'Pool':
    """Cohort 0: `initial_size` pool examples drawn uniformly without replacement by `rng`."""
    if not 1 <= initial_size <= pool_size:
      raise ConfigError(f'al.initial_size ({initial_size}) must be between 1 and the pool size '
                       f'({pool_size})')
    labeled = rng.choice(pool_size, size=initial_size, replace=False)
    return cls(pool_size, labeled, np.zeros(initial_size, np.int32))

  @property
  def num_cohorts(self) -> int:
    return int(self.cohorts[-1]) + 1 if len(self.cohorts) else 0

  @property
  def cohort_sizes(self) -> tuple[int, ...]:
    """Members of each cohort 0 .. num_cohorts − 1 (the plan's `cohort_sizes` prefix)."""
    return tuple(int(c) for c in np.bincount(self.cohorts, minlength=self.num_cohorts))

  def unlabeled(self) -> np.ndarray:
    """The int64 indices not yet labeled, ascending."""
    is_unlabeled = np.ones(self.pool_size, bool)
    is_unlabeled[self.labeled] = False
    return np.flatnonzero(is_unlabeled).astype(np.int64)

  def label(self, indices: Sequence[int] | np.ndarray) -> 'Pool':
    """A new pool with `indices` (in the given order) labeled as the next cohort."""
    new = np.asarray(indices)
    if new.ndim != 1 or len(new) == 0 or not np.issubdtype(new.dtype, np.integer):
      raise ValueError(f'Pool.label needs a non-empty 1-D array of integer indices, got {new!r}')
    new = new.astype(np.int64)
    _check_new_indices(new, self.pool_size, self.labeled)
    return Pool(self.pool_size, np.concatenate([self.labeled, new]),
                np.concatenate([self.cohorts, np.full(len(new), self.num_cohorts, np.int32)]))

  def sample_rates(self, rates_per_cohort: Sequence[float]) -> np.ndarray:
    """float64 Poisson rate of each labeled example (in `labeled` order) from its cohort's rate."""
    rates = np.asarray(rates_per_cohort, np.float64)
    if rates.shape != (self.num_cohorts,):
      raise ValueError(f'Pool.sample_rates: {rates.size} rates given for {self.num_cohorts} cohorts; '
                       'the plan phase and the pool disagree on the number of queries done')
    if not np.all((rates >= 0) & (rates <= 1)):
      raise ValueError(f'Pool.sample_rates: rates must lie in [0, 1], got {rates.tolist()}')
    return rates[self.cohorts]

  def to_dict(self) -> dict:
    return {'schema': SCHEMA, 'pool_size': self.pool_size, 'labeled': self.labeled.tolist(),
            'cohorts': self.cohorts.tolist()}

  @classmethod
  def from_dict(cls, d: dict) -> 'Pool':
    if d.get('schema') != SCHEMA:
      raise ValueError(f'not a pool record: schema {d.get("schema")!r}, expected {SCHEMA!r}')
    return cls(d['pool_size'], d['labeled'], d['cohorts'])

  def to_json(self) -> str:
    return json.dumps(self.to_dict())

  @classmethod
  def from_json(cls, text: str) -> 'Pool':
    return cls.from_dict(json.loads(text))

  def __eq__(self, other) -> bool:
    if not isinstance(other, Pool):
      return NotImplemented
    return (self.pool_size == other.pool_size and np.array_equal(self.labeled, other.labeled)
            and np.array_equal(self.cohorts, other.cohorts))

  __hash__ = None


def _check_new_indices(new: np.ndarray, pool_size: int, labeled: np.ndarray):
  """Refuses indices outside the pool, repeated, or already labeled: each person is labeled once."""
  if len(new) and (new.min() < 0 or new.max() >= pool_size):
    raise ValueError(f'Pool: indices must lie in [0, {pool_size}), got [{new.min()}, {new.max()}]')
  values, counts = np.unique(new, return_counts=True)
  if np.any(counts > 1):
    raise ValueError(f'Pool: indices {values[counts > 1][:10].tolist()} are given more than once')
  again = np.intersect1d(new, labeled)
  if len(again):
    raise ValueError(f'Pool: indices {again[:10].tolist()} are already labeled')
