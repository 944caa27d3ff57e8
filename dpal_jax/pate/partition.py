"""Teacher partitions by privacy unit: the sensitive records split into n disjoint parts, one per teacher.

PATE's guarantee is per partition: changing everything one partition holds changes one teacher's vote,
so each vote count moves by at most one (two counts in all). A person must therefore sit in exactly one
partition. With a person (or group) id per record, whole ids are dealt to partitions; without one, each
record is its own unit. The deal is a seeded permutation of the units, dealt in turn (the unit with
the most records first when ids are given, to the partition with the fewest records so far), so it
depends only on the ids and the public seed — never on labels or inputs — and partitions differ in size
by at most one unit.

The ledger then charges partitions: unit i of the PATE ledger is partition i, and a person's ε is that
of the one partition that holds them.
"""

import dataclasses
import heapq

import numpy as np

from dpal_jax.errors import ConfigError


@dataclasses.dataclass(frozen=True, eq=False)
class Partitions:
  """`teacher[r]`: the partition (teacher) of sensitive record r; `unit`: 'record' or 'group'."""
  teacher: np.ndarray
  num_teachers: int
  unit: str

  @property
  def sizes(self) -> np.ndarray:
    """Records per partition, [num_teachers]."""
    return np.bincount(self.teacher, minlength=self.num_teachers)

  def members(self) -> tuple[np.ndarray, np.ndarray]:
    """(index, mask), each [num_teachers, max size]: the records of each partition, padded with 0
    (mask False) to the size of the largest, the form that stacked training reads."""
    sizes = self.sizes
    order = np.argsort(self.teacher, kind='stable')
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    width = int(sizes.max())
    index = np.zeros((self.num_teachers, width), np.int32)
    mask = np.arange(width)[None, :] < sizes[:, None]
    for t in range(self.num_teachers):
      index[t, :sizes[t]] = order[starts[t]:starts[t] + sizes[t]]
    return index, mask


def split(num_records: int, num_teachers: int, *, groups: np.ndarray | None = None,
          seed: int = 0) -> Partitions:
  """Deals `num_records` sensitive records into `num_teachers` disjoint, non-empty partitions.

  Args:
    num_records: the number of sensitive records.
    num_teachers: n, the number of partitions.
    groups: optional person or group id of each record (any integer or string ids); every id lands in
      exactly one partition. None: each record is its own unit.
    seed: the public seed of the deal.

  Returns:
    The `Partitions`; every record belongs to exactly one partition, every id to exactly one.

  Raises ConfigError when there are fewer units (records, or distinct ids) than teachers.

  >>> split(5, 2, seed=0).sizes.tolist()
  [3, 2]

  *Formal guarantees*: the assignment is a function of `groups` and `seed` only, so it is public; each
  unit is in exactly one partition, so a unit's records affect exactly one teacher.
  """
  if num_teachers < 1:
    raise ConfigError(f'pate.num_teachers ({num_teachers}) must be at least 1')
  rng = np.random.default_rng(seed)
  if groups is None:
    if num_records < num_teachers:
      raise ConfigError(f'pate.num_teachers ({num_teachers}) is more than the {num_records} sensitive '
                        'records; lower pate.num_teachers or give the teachers more data')
    teacher = np.empty(num_records, np.int32)
    teacher[rng.permutation(num_records)] = np.arange(num_records) % num_teachers
    return Partitions(teacher, num_teachers, 'record')
  groups = np.asarray(groups)
  if groups.shape != (num_records,):
    raise ConfigError(f'the group ids have shape {groups.shape}; give one id per sensitive record '
                      f'({num_records})')
  ids, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
  if len(ids) < num_teachers:
    raise ConfigError(f'pate.num_teachers ({num_teachers}) is more than the {len(ids)} distinct persons '
                      'or groups of the sensitive records; lower pate.num_teachers')
  shuffled = rng.permutation(len(ids))
  order = shuffled[np.argsort(-counts[shuffled], kind='stable')]   # largest first, ties in seeded order
  heap = [(0, t) for t in range(num_teachers)]
  owner = np.empty(len(ids), np.int32)
  for g in order:
    size, t = heapq.heappop(heap)
    owner[g] = t
    heapq.heappush(heap, (size + int(counts[g]), t))
  return Partitions(owner[inverse.reshape(-1)], num_teachers, 'group')
