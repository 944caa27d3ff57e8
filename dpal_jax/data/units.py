"""Simulated privacy units for a pool that has none: public sites and persons with several records.

`dataset.sites = S` (> 0) puts each pool example in one of S sites 'site_0' … 'site_{S−1}'
(`Dataset.groups`), and `dataset.max_records_per_person = R` (> 0) groups the pool into persons of
1 … R records each (`Dataset.person_id`), both drawn with `numpy.random.default_rng(seed)` and
independently of the features and labels, so membership is public, as per-group budgets and
person-level DP require. A dataset that names its own sites or persons keeps them (no simulation over
real units). For tests and demonstrations of docs/budgets.md; a real pool gives these columns itself.
"""

import dataclasses

import numpy as np

from dpal_jax.data.dataset import Dataset
from dpal_jax.errors import ConfigError


def apply(dataset: Dataset, sites: int = 0, max_records_per_person: int = 0, seed: int = 0) -> Dataset:
  """`dataset` with simulated sites and persons (see the module docstring); unchanged for 0 and 0."""
  rng = np.random.default_rng(seed)
  n = len(dataset.x_train)
  changes = {}
  if sites:
    if dataset.groups is not None:
      raise ConfigError(f'dataset.sites ({sites}): dataset {dataset.name!r} names its own groups; unset it')
    changes['groups'] = np.asarray([f'site_{s}' for s in rng.integers(0, sites, n)])
  if max_records_per_person:
    if dataset.person_id is not None:
      raise ConfigError(f'dataset.max_records_per_person ({max_records_per_person}): dataset '
                        f'{dataset.name!r} names its own persons; unset it')
    sizes = rng.integers(1, max_records_per_person + 1, n)   # more than enough persons
    sizes = sizes[:np.searchsorted(np.cumsum(sizes), n) + 1]
    person = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)[:n]
    changes['person_id'] = person[rng.permutation(n)]
  return dataclasses.replace(dataset, **changes) if changes else dataset
