"""Pool invariants: labeled and unlabeled partition the pool, cohorts grow in labeling order, JSON."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpal_jax.data.pool import Pool
from dpal_jax.errors import ConfigError


@st.composite
def pools(draw):
  """A pool after a random initial draw and a random sequence of queries."""
  pool_size = draw(st.integers(1, 60))
  rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
  pool = Pool.initial(pool_size, draw(st.integers(1, pool_size)), rng)
  for size in draw(st.lists(st.integers(1, 10), max_size=5)):
    unlabeled = pool.unlabeled()
    if len(unlabeled) == 0:
      break
    pool = pool.label(rng.choice(unlabeled, size=min(size, len(unlabeled)), replace=False))
  return pool


@settings(max_examples=60, deadline=None)
@given(pools())
def test_labeled_and_unlabeled_partition_the_pool(pool):
  labeled, unlabeled = pool.labeled, pool.unlabeled()
  assert labeled.dtype == np.int64 and unlabeled.dtype == np.int64
  assert len(np.intersect1d(labeled, unlabeled)) == 0
  np.testing.assert_array_equal(np.sort(np.concatenate([labeled, unlabeled])),
                                np.arange(pool.pool_size))
  assert len(np.unique(labeled)) == len(labeled)


@settings(max_examples=60, deadline=None)
@given(pools())
def test_cohorts_are_monotone_and_gapless(pool):
  assert pool.cohorts.dtype == np.int32 and len(pool.cohorts) == len(pool.labeled)
  assert pool.cohorts[0] == 0
  assert set(np.diff(pool.cohorts).tolist()) <= {0, 1}
  assert sum(pool.cohort_sizes) == len(pool.labeled) and min(pool.cohort_sizes) >= 1
  assert len(pool.cohort_sizes) == pool.num_cohorts


@settings(max_examples=60, deadline=None)
@given(pools())
def test_json_round_trip(pool):
  again = Pool.from_json(pool.to_json())
  assert again == pool
  assert again.labeled.dtype == np.int64 and again.cohorts.dtype == np.int32


@settings(max_examples=30, deadline=None)
@given(pools(), st.data())
def test_sample_rates_follow_the_cohorts(pool, data):
  rates = data.draw(st.lists(st.floats(0, 1), min_size=pool.num_cohorts,
                             max_size=pool.num_cohorts))
  per_example = pool.sample_rates(rates)
  assert per_example.shape == pool.labeled.shape
  np.testing.assert_array_equal(per_example, np.asarray(rates)[pool.cohorts])


def test_label_appends_a_cohort_in_the_given_order():
  pool = Pool(10, [3, 1], [0, 0]).label([7, 0, 5])
  np.testing.assert_array_equal(pool.labeled, [3, 1, 7, 0, 5])
  np.testing.assert_array_equal(pool.cohorts, [0, 0, 1, 1, 1])
  np.testing.assert_array_equal(pool.unlabeled(), [2, 4, 6, 8, 9])
  assert pool.num_cohorts == 2 and pool.cohort_sizes == (2, 3)
  np.testing.assert_array_equal(pool.sample_rates([0.5, 0.25]), [0.5, 0.5, 0.25, 0.25, 0.25])


def test_initial_is_reproducible_and_uniform():
  a = Pool.initial(100, 30, np.random.default_rng(7))
  assert a == Pool.initial(100, 30, np.random.default_rng(7))
  assert a != Pool.initial(100, 30, np.random.default_rng(8))
  assert a.num_cohorts == 1 and len(a.labeled) == 30


@pytest.mark.parametrize('indices, match', [
    ([1, 4], 'already labeled'),
    ([5, 5], 'more than once'),
    ([10], r'\[0, 10\)'),
    ([-1], r'\[0, 10\)'),
    ([], 'non-empty'),
    ([1.0], 'integer'),
])
def test_label_refuses_bad_indices(indices, match):
  pool = Pool(10, [1, 2], [0, 0])
  with pytest.raises(ValueError, match=match):
    pool.label(indices)


def test_refuses_inconsistent_fields():
  with pytest.raises(ValueError, match='cohorts must start at 0'):
    Pool(10, [1, 2], [0, 2])
  with pytest.raises(ValueError, match='cohorts must start at 0'):
    Pool(10, [1, 2], [1, 1])
  with pytest.raises(ValueError, match='cohort entries'):
    Pool(10, [1, 2], [0])
  with pytest.raises(ValueError, match='schema'):
    Pool.from_json('{"pool_size": 3, "labeled": [0], "cohorts": [0]}')


def test_sample_rates_refuses_a_length_mismatch():
  pool = Pool(10, [1, 2], [0, 0]).label([3])
  with pytest.raises(ValueError, match='2 cohorts'):
    pool.sample_rates([0.1])
  with pytest.raises(ValueError, match=r'\[0, 1\]'):
    pool.sample_rates([0.1, 1.5])


def test_initial_size_must_fit_the_pool():
  with pytest.raises(ConfigError, match='al.initial_size'):
    Pool.initial(10, 11, np.random.default_rng(0))
  with pytest.raises(ConfigError, match='al.initial_size'):
    Pool.initial(10, 0, np.random.default_rng(0))


def test_is_frozen():
  pool = Pool(10, [1, 2], [0, 0])
  with pytest.raises(ValueError):
    pool.labeled[0] = 5
