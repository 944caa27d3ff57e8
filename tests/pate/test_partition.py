"""Teacher partitions: disjoint, covering, by person when ids are given, seeded and public."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpal_jax.errors import ConfigError
from dpal_jax.pate import partition


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 300), st.integers(1, 20), st.integers(0, 5))
def test_by_record_every_record_is_in_one_partition_of_balanced_size(n, teachers, seed):
  if teachers > n:
    with pytest.raises(ConfigError, match='pate.num_teachers'):
      partition.split(n, teachers, seed=seed)
    return
  parts = partition.split(n, teachers, seed=seed)
  assert parts.teacher.shape == (n,) and parts.unit == 'record'
  assert parts.sizes.sum() == n and parts.sizes.max() - parts.sizes.min() <= 1
  index, mask = parts.members()
  members = np.sort(index[mask])
  assert np.array_equal(members, np.arange(n))   # each record exactly once
  for t in range(teachers):
    assert np.all(parts.teacher[index[t][mask[t]]] == t)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=5, max_size=200), st.integers(1, 5), st.integers(0, 3))
def test_by_group_every_person_is_in_exactly_one_partition(ids, teachers, seed):
  ids = np.asarray(ids)
  if len(np.unique(ids)) < teachers:
    with pytest.raises(ConfigError, match='distinct persons'):
      partition.split(len(ids), teachers, groups=ids, seed=seed)
    return
  parts = partition.split(len(ids), teachers, groups=ids, seed=seed)
  assert parts.unit == 'group' and np.all(parts.sizes > 0)
  for person in np.unique(ids):
    assert len(np.unique(parts.teacher[ids == person])) == 1
  # Greedy deal of the largest persons first: no partition exceeds another by more than one person.
  largest = np.bincount(np.unique(ids, return_inverse=True)[1]).max()
  assert parts.sizes.max() - parts.sizes.min() <= largest


def test_the_deal_is_seeded_and_depends_on_the_seed():
  a, b = partition.split(1000, 10, seed=1), partition.split(1000, 10, seed=1)
  assert np.array_equal(a.teacher, b.teacher)
  assert not np.array_equal(a.teacher, partition.split(1000, 10, seed=2).teacher)


def test_group_ids_of_the_wrong_shape_are_refused():
  with pytest.raises(ConfigError, match='one id per sensitive record'):
    partition.split(10, 2, groups=np.arange(9))
