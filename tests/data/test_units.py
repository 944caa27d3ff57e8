"""Simulated privacy units (data/units.py) and the Dataset's groups / person_id checks."""

import dataclasses

import numpy as np
import pytest

from dpal_jax.data import units
from dpal_jax.data.dataset import Dataset
from dpal_jax.errors import ConfigError, DataError

RNG = np.random.default_rng(0)
X = RNG.normal(size=(500, 3)).astype(np.float32)
Y = RNG.integers(0, 2, 500).astype(np.int32)
BASE = Dataset('toy', X, Y, X[:20], Y[:20], num_classes=2, task='multiclass')


def test_sites_and_persons_are_drawn_independently_of_the_data_and_reproducibly():
  one = units.apply(BASE, sites=3, max_records_per_person=4)
  other = units.apply(dataclasses.replace(BASE, x_train=X * 0, y_train=1 - Y), sites=3,
                      max_records_per_person=4)
  assert np.array_equal(one.groups, other.groups) and np.array_equal(one.person_id, other.person_id)
  assert set(one.groups) == {'site_0', 'site_1', 'site_2'}
  records = np.bincount(one.person_id)
  assert records.min() >= 1 and records.max() <= 4 and records.sum() == 500 and len(set(records)) == 4
  assert units.apply(BASE) is BASE   # 0 and 0: record-level, one budget


def test_a_dataset_with_its_own_units_keeps_them():
  named = dataclasses.replace(BASE, groups=np.array(['a'] * 500), person_id=np.arange(500))
  with pytest.raises(ConfigError, match='dataset.sites .* names its own groups'):
    units.apply(named, sites=2)
  with pytest.raises(ConfigError, match='dataset.max_records_per_person .* names its own persons'):
    units.apply(named, max_records_per_person=2)


@pytest.mark.parametrize('field, value, says', [
    ('groups', np.array(['a'] * 499), r'groups must be None or an array \[500\]'),
    ('person_id', np.arange(500.0), r'person_id must be None or an integer array of shape \[500\]'),
    ('person_id', np.arange(499), r'person_id must be None or an integer array'),
])
def test_bad_units_are_refused_by_name(field, value, says):
  with pytest.raises(DataError, match=says):
    dataclasses.replace(BASE, **{field: value})
