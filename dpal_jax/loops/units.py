"""The privacy units of a DP-AL pool: which rows a pool item is, and which unit slot pays for it.

Record-level (the default): a pool item is one row of `x_train`, a unit is a cohort.

Person-level (`Dataset.person_id`): a pool item is a person, with all its records. The pool labels whole
persons (al.initial_size and al.query_sizes count persons, so the plan's cohort sizes are persons), the
trainer samples persons at their cohort's rate and clips each person's summed gradient
(`dpsgd/persons.py`), so every ε of the ledger is a person's, whatever its number of records. A query
scores a person as a whole: a score strategy's score of a person is the mean of its records' scores
(the mechanism clamps it to [0, clamp] like a record's; it depends only on that person's records and
the released model, so adding or removing a person changes one candidate's score within [0, clamp]:
the per-candidate sensitivity of the record-level mechanism, and the same event per person); a strategy
that picks by itself (core-set, BADGE) sees each person as its first record (the same argument).

Per-group budgets (`privacy.group_epsilon`, `privacy/groups.py`): an item's groups are those of its
row(s) (a person: the union over its records, so it is charged in each), and the item pays through unit
slot c·G + s of its cohort c and group signature s.
"""

import numpy as np

from dpal_jax.al import strategies
from dpal_jax.data.dataset import Dataset
from dpal_jax.dpsgd import persons
from dpal_jax.dpsgd import sampler
from dpal_jax.errors import ConfigError
from dpal_jax.privacy import groups as groups_lib
from dpal_jax.privacy.mechanisms import top_k


class PoolUnits:
  """Maps pool items (rows or persons) to rows, to group signatures and to the plan's unit slots."""

  def __init__(self, config, dataset: Dataset):
    self.layout = None if dataset.person_id is None else persons.PersonLayout(dataset.person_id)
    if self.layout is not None and config.privacy.get('ledger_path'):
      raise ConfigError(f'privacy.ledger_path ({config.privacy.ledger_path}) keeps its units per pool '
                        'example; person-level DP (dataset.person_id) needs them per person, which it does '
                        'not do yet: unset one of the two')
    self.groups = None
    if config.privacy.get('group_epsilon') and dataset.groups is not None:
      labels = dataset.groups if dataset.groups.ndim == 2 else dataset.groups[:, None]
      if self.layout is None:
        memberships = [set(row) for row in labels.astype(str).tolist()]
      else:
        memberships = [set(labels[r[r != sampler.SENTINEL]].astype(str).ravel().tolist())
                       for r in self.layout.rows]
      self.groups = groups_lib.from_sets(memberships, dict(config.privacy.group_epsilon),
                                         config.privacy.epsilon)
    self.pool_size = len(dataset.x_train) if self.layout is None else self.layout.num_persons
    audit = config.get('audit')
    if (self.layout is not None or self.groups is not None) and audit is not None and audit.get('enabled'):
      raise ConfigError('audit.enabled: the audit trains per record with one budget, not per person or '
                        'group; unset audit.enabled or the units (dataset.person_id, privacy.group_epsilon)')

  @property
  def by_person(self) -> bool:
    return self.layout is not None

  def mark(self, ledger):
    """`ledger` with the members of its units named: persons when person-level (ledger.json says so)."""
    if self.by_person:
      ledger.privacy_unit = 'person'
    return ledger

  def rows(self, items: np.ndarray) -> np.ndarray:
    """The rows of `items`, item after item (a person's records in pool order)."""
    items = np.asarray(items, np.int64)
    if self.layout is None:
      return items
    table = self.layout.rows[items]
    return table[table != sampler.SENTINEL]

  def training(self, pool, phase_rates) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(rows, one Poisson rate per row, the person of each row or None) of a phase over `pool`'s labeled
    items; `phase_rates` holds one rate per unit slot (`DpsgdPhase.sample_rates`)."""
    if self.groups is None:
      item_rates = pool.sample_rates(phase_rates)
    else:
      slots = groups_lib.item_slots(pool.cohorts, self.groups.signature_of[pool.labeled],
                                    self.groups.num_signatures)
      item_rates = np.asarray(phase_rates, np.float64)[slots]
    if self.layout is None:
      return pool.labeled, item_rates, None
    table = self.layout.rows[pool.labeled]
    real = table != sampler.SENTINEL
    owner = np.broadcast_to(np.asarray(pool.labeled)[:, None], table.shape)
    return table[real], np.broadcast_to(item_rates[:, None], table.shape)[real], owner[real]

  def select(self, strategy, *, x_train: np.ndarray, unlabeled: np.ndarray, x_labeled: np.ndarray,
             k: int, mechanism, rng: np.random.Generator, **kwargs) -> tuple[np.ndarray, np.ndarray | None]:
    """(picks as indices into `unlabeled`, the unnoised scores) of `strategies.select_scored`, over
    persons when person-level (see the module docstring); `kwargs` go to `select_scored`."""
    if self.layout is None or strategy.pick is not None:
      first = unlabeled if self.layout is None else self.layout.rows[unlabeled, 0]
      return strategies.select_scored(strategy, x_unlabeled=x_train[first], x_labeled=x_labeled, k=k,
                                      mechanism=mechanism, rng=rng, **kwargs)
    strategies.check_selection(strategy, private=mechanism is not None)
    if not 0 <= k <= len(unlabeled):
      raise ConfigError(f'al.query_sizes asks for {k} persons but the pool has {len(unlabeled)} '
                        'unlabeled; lower al.query_sizes or al.labeling_budget')
    table = self.layout.rows[unlabeled]
    real = table != sampler.SENTINEL
    # Every record's unnoised score (the exact top-k that comes with it is discarded, never released).
    _, record_scores = strategies.select_scored(strategy, x_unlabeled=x_train[table[real]],
                                                x_labeled=x_labeled, k=0, mechanism=None, rng=rng,
                                                **kwargs)
    owner = np.broadcast_to(np.arange(len(unlabeled))[:, None], table.shape)[real]
    scores = (np.bincount(owner, weights=record_scores, minlength=len(unlabeled))
              / np.bincount(owner, minlength=len(unlabeled)))
    if mechanism is None:
      return top_k.exact_top_k(scores, k), scores
    return mechanism.top_k(scores, k, clamp=strategy.clamp, rng=rng), scores

  def summary(self, ledger) -> dict:
    """summary.json's extra fields: the privacy unit when it is the person, each group's ε with groups."""
    out = {'privacy_unit': 'person'} if self.by_person else {}
    return out | ({'epsilon_per_group': ledger.epsilon_per_group()} if ledger.groups else {})
