"""The seeded stratified split and pixel normalisation."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpal_jax.data import preprocess
from dpal_jax.errors import ConfigError


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=12, max_size=200), st.data())
def test_split_is_a_stratified_partition(labels, data):
  y = np.asarray(labels, np.int32)
  num_classes = len(np.unique(y))
  test_size = data.draw(st.integers(num_classes, len(y) - num_classes))
  x = np.arange(len(y))  # each input is its own index, to trace where examples went
  x_pool, y_pool, x_test, y_test = preprocess.split_test(x, y, test_size, seed=3)
  assert len(x_test) == test_size
  np.testing.assert_array_equal(np.sort(np.concatenate([x_pool, x_test])), np.arange(len(y)))
  np.testing.assert_array_equal(y_pool, y[x_pool])
  np.testing.assert_array_equal(y_test, y[x_test])
  for c in np.unique(y):  # each class within one example of its proportional share
    assert abs(np.sum(y_test == c) - test_size * np.mean(y == c)) < 1


def test_split_is_fixed_by_the_seed():
  y = np.arange(100) % 5
  x = np.arange(100)
  a = preprocess.split_test(x, y, 20, seed=0)
  np.testing.assert_array_equal(a[2], preprocess.split_test(x, y, 20, seed=0)[2])
  assert not np.array_equal(np.sort(a[2]), np.sort(preprocess.split_test(x, y, 20, seed=1)[2]))


def test_multilabel_split():
  y = np.eye(3, dtype=np.float32)[np.arange(30) % 3]
  x_pool, y_pool, x_test, y_test = preprocess.split_test(np.arange(30), y, 7, seed=0)
  assert len(x_test) == 7 and y_test.shape == (7, 3) and len(x_pool) == 23


@pytest.mark.parametrize('test_size', [0, 2, 99, 10.5, None])
def test_bad_test_size_names_the_field(test_size):
  with pytest.raises(ConfigError, match='dataset.test_size'):
    preprocess.split_test(np.arange(100), np.arange(100) % 3, test_size, seed=0)


def test_normalize_images_per_channel():
  images = np.array([[[[0, 255, 51]]]], np.uint8)
  out = preprocess.normalize_images(images, mean=(0.5, 0.5, 0.2), std=(0.5, 0.25, 0.1))
  assert out.dtype == np.float32
  np.testing.assert_allclose(out[0, 0, 0], [-1.0, 2.0, 0.0], atol=1e-6)
  np.testing.assert_allclose(
      preprocess.normalize_images(np.array([[[[0], [16]]]]), *preprocess.UNIT_RANGE, max_value=16.0),
      [[[[-1.0], [1.0]]]])
