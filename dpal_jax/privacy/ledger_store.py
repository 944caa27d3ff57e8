"""The persistent ledger of one data pool (`privacy.ledger_path`): every campaign's spend, across runs.

A campaign is one run (one workdir) on the pool. Its spend is charged to pool examples through its units
(a unit: a set of pool examples with one event history in that run — a cohort, the never-labeled, later a
group or a person). A pool example's history is the concatenation, over campaigns in the order they
reserved, of the dp-accounting events of the unit it was in; its ε is ε_δ of that history in one fresh
accountant. The budget `target_epsilon` (and δ, the accountant) is fixed by the first campaign.

Layout of PATH: `PATH/.lock` (an fcntl lock, held while a record is read and appended) and
`PATH/records/NNNNNNNN.json`, immutable records (schema `dpal_jax.pool_ledger/1`), each written to a
temporary file, fsynced, renamed into place and the folder fsynced, so a crash (even SIGKILL) leaves the
old records and at most a stray temporary file that readers ignore. Record kinds:
- `reserve` (before the campaign spends anything): `candidates` (the pool examples it may score or label),
  `prior` (the dp events it planned from, see `prior_of`), and `planned`: per planned unit its worst-case
  dp events (the whole plan: every phase and query it may take);
- `spend` (after each committed stage) and `close` (after the run ended, cleanly or stopped early): per
  unit `members` (pool ids; null: the candidates labeled by no unit), `events` (this campaign's events
  of the unit) and `epsilon` (what the run's ledger said: prior ∘ events), so `check` can recompute it.

Counting (`histories`), which never under-counts:
- a closed campaign charges each unit's members the unit's recorded events (the unused reservation is
  released);
- an open one (running, or crashed) charges every candidate ALL of its planned units' events composed.
  Whatever unit an example ends in, its real spend is a sub-history of one planned unit, and composing
  more events never lowers ε, so this dominates; it is what keeps a crashed run, or a concurrent one,
  counted in full until the run is resumed and closes.
So the order is: reserve (fsynced, under the lock) → spend (the run's own ledger, checkpointed) → close.

A new campaign's candidates are the pool examples no closed campaign labeled (their labels exist). The
prior of every unit of the new run is `prior_of(candidates)`: the composition of the DISTINCT histories
of the candidates. It dominates each member's own history; when all agree — the common case, since every
candidate was scored by the same queries of earlier campaigns — it equals it; with an open campaign it is
conservative (a concurrent run can only plan from what the other's worst case leaves). Example ids are
stored: which examples were labeled is an output of the private selection (post-processing of a DP
release); no private value is stored.
"""

import contextlib
import fcntl
import json
import os
import re
import tempfile
import time
from collections.abc import Sequence

import numpy as np

from dpal_jax.errors import CheckpointError
from dpal_jax.privacy import accounting
from dpal_jax.privacy import events as events_lib

SCHEMA = 'dpal_jax.pool_ledger/1'
RECORDS = 'records'
LOCK = '.lock'
_NAME = re.compile(r'^(\d{8})\.json$')
KINDS = ('reserve', 'spend', 'close')
_FIELDS = {'reserve': ('campaign', 'workdir', 'pool', 'pool_size', 'accountant', 'delta', 'target_epsilon',
                       'candidates', 'prior', 'planned'),
           'spend': ('campaign', 'stage', 'units'), 'close': ('campaign', 'stage', 'units', 'stopped')}
_UNIT_FIELDS = ('unit', 'name', 'members', 'events', 'epsilon')


def events_to_json(events: Sequence) -> list[dict]:
  return [events_lib.dp_event_to_dict(e) for e in events]


def events_from_json(data: Sequence[dict]) -> list:
  return [events_lib.dp_event_from_dict(e) for e in data]


class Store:
  """The records of one pool ledger folder (see the module docstring)."""

  def __init__(self, path: str):
    self.path = os.path.abspath(path)
    self.records_dir = os.path.join(self.path, RECORDS)

  @contextlib.contextmanager
  def locked(self):
    """Holds PATH/.lock (blocking): a read and the append that depends on it are one step."""
    os.makedirs(self.records_dir, exist_ok=True)
    fd = os.open(os.path.join(self.path, LOCK), os.O_RDWR | os.O_CREAT, 0o600)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX)
      yield self
    finally:
      fcntl.flock(fd, fcntl.LOCK_UN)
      os.close(fd)

  def records(self) -> list[dict]:
    """Every record in order; CheckpointError naming the file when one is damaged."""
    if not os.path.isdir(self.records_dir):
      return []
    names = sorted(n for n in os.listdir(self.records_dir) if _NAME.match(n))
    out = []
    for expected, name in enumerate(names):
      path = os.path.join(self.records_dir, name)
      try:
        with open(path) as f:
          record = json.load(f)
        if record.get('schema') != SCHEMA or record.get('kind') not in KINDS:
          raise ValueError(f'not a {SCHEMA} record')
        if record['seq'] != expected or int(_NAME.match(name).group(1)) != expected:
          raise ValueError(f'record number {record["seq"]} where {expected} was expected')
        missing = [f for f in _FIELDS[record['kind']] if f not in record]
        units = record.get('units', [])
        missing += [f'units[].{f}' for f in _UNIT_FIELDS if any(f not in u for u in units)]
        if missing:
          raise ValueError(f'a {record["kind"]} record without {", ".join(missing)}')
      except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(
            f'privacy.ledger_path {self.path}: {path} is damaged ({type(e).__name__}: {str(e)[:200]}); '
            'nothing was changed. Restore it from a backup; never delete a record (that would '
            'under-count the spend)') from e
      out.append(record)
    return out

  def append(self, kind: str, campaign: str, **fields) -> dict:
    """Appends one record atomically (call under `locked`); returns it."""
    if kind not in KINDS:
      raise ValueError(f'record kind {kind!r} is not one of {KINDS}')
    seq = len(self.records())
    record = {'schema': SCHEMA, 'seq': seq, 'kind': kind, 'campaign': campaign, 'time': time.time(),
              **fields}
    text = json.dumps(record, allow_nan=False)
    for name in os.listdir(self.records_dir):   # strays of writers killed mid-write
      if name.startswith('.tmp'):
        with contextlib.suppress(OSError):
          os.remove(os.path.join(self.records_dir, name))
    fd, tmp = tempfile.mkstemp(dir=self.records_dir, prefix='.tmp')
    try:
      with os.fdopen(fd, 'w') as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
      os.chmod(tmp, 0o644)
      os.rename(tmp, os.path.join(self.records_dir, f'{seq:08d}.json'))
    except BaseException:
      with contextlib.suppress(OSError):
        os.remove(tmp)
      raise
    dir_fd = os.open(self.records_dir, os.O_RDONLY)
    try:
      os.fsync(dir_fd)
    finally:
      os.close(dir_fd)
    return record


class Campaign:
  """One campaign as the records show it: its reservation, its latest spend, and whether it closed."""

  def __init__(self, reserve: dict):
    self.reserve = reserve
    self.latest = None     # the latest spend or close record
    self.closed = False

  @property
  def name(self) -> str:
    return self.reserve['campaign']


def campaigns(records: Sequence[dict]) -> list[Campaign]:
  """The campaigns in the order they reserved; a spend or close without a reservation is damage."""
  by_name, order = {}, []
  for record in records:
    if record['kind'] == 'reserve':
      if record['campaign'] in by_name:
        raise CheckpointError(f'ledger record {record["seq"]}: campaign {record["campaign"]} reserved twice')
      by_name[record['campaign']] = campaign = Campaign(record)
      order.append(campaign)
      continue
    campaign = by_name.get(record['campaign'])
    if campaign is None:
      raise CheckpointError(f'ledger record {record["seq"]}: {record["kind"]} of campaign '
                            f'{record["campaign"]}, which never reserved')
    campaign.latest = record
    campaign.closed = campaign.closed or record['kind'] == 'close'
  return order


def budget(records: Sequence[dict]) -> dict | None:
  """The pool's budget (pool, pool_size, accountant, δ, target ε), fixed by the first reservation."""
  for record in records:
    if record['kind'] == 'reserve':
      return {k: record[k] for k in ('pool', 'pool_size', 'accountant', 'delta', 'target_epsilon')}
  return None


def _key(events: Sequence[dict]) -> str:
  return json.dumps(list(events), sort_keys=True)


def histories(records: Sequence[dict], pool_size: int) -> tuple[np.ndarray, list[dict]]:
  """(class of each pool example, the classes): see the module docstring.

  A class is the examples that went through the same units: {'path': [(campaign, unit name), …],
  'events': its history as dp event dicts}. Class 0 is the examples no campaign touched.
  """
  cls = np.zeros(pool_size, np.int64)
  found = [{'path': [], 'events': []}]
  for campaign in campaigns(records):
    charge = np.full(pool_size, -1, np.int64)      # per example: which addition (-1: none)
    additions = []                                  # (unit name, events)
    candidates = np.asarray(campaign.reserve['candidates'], np.int64)
    if campaign.closed:
      rest = np.zeros(pool_size, bool)
      rest[candidates] = True
      rest_unit = None
      for unit in campaign.latest['units']:
        if unit['members'] is None:
          rest_unit = unit
          continue
        members = np.asarray(unit['members'], np.int64)
        rest[members] = False
        charge[members] = len(additions)
        additions.append((unit['name'], unit['events']))
      if rest_unit is not None:
        charge[rest] = len(additions)
        additions.append((rest_unit['name'], rest_unit['events']))
    else:
      charge[candidates] = 0
      additions.append(('reserved: the worst case of every planned unit',
                        [e for unit in campaign.reserve['planned'] for e in unit]))
    unique, inverse = np.unique(np.stack([cls, charge], axis=1), axis=0, return_inverse=True)
    new_found = []
    for old, add in unique:
      entry = found[old]
      if add >= 0:
        name, spent = additions[add]
        entry = {'path': entry['path'] + [(campaign.name, name)], 'events': entry['events'] + spent}
      new_found.append(entry)
    cls, found = inverse.reshape(-1), new_found
  return cls, found


def without_open(records: Sequence[dict]) -> list[dict]:
  """The records of closed campaigns only (what a provisional plan reads; never what is counted)."""
  closed = {c.name for c in campaigns(records) if c.closed}
  return [r for r in records if r['campaign'] in closed]


def labeled_by_closed(records: Sequence[dict], pool_size: int) -> np.ndarray:
  """bool per pool example: labeled by a closed campaign (no longer a candidate)."""
  out = np.zeros(pool_size, bool)
  for campaign in campaigns(records):
    if campaign.closed:
      for unit in campaign.latest['units']:
        if unit['members'] is not None:
          out[np.asarray(unit['members'], np.int64)] = True
  return out


def prior_of(records: Sequence[dict], pool_size: int, members: np.ndarray) -> list:
  """The prior of a unit with `members`: the distinct histories of its members composed (dp events)."""
  cls, found = histories(records, pool_size)
  out, seen = [], set()
  for c in np.unique(cls[np.asarray(members, np.int64)]):
    key = _key(found[int(c)]['events'])
    if key not in seen:
      seen.add(key)
      out += found[int(c)]['events']
  return events_from_json(out)


def epsilon(events: Sequence, delta: float, accountant: str) -> float:
  return accounting.epsilon(list(events), delta, accountant)
