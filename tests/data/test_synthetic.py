"""The synthetic Gaussian-blob dataset: shapes, determinism, and that it is learnable."""

import numpy as np
import pytest

from dpal_jax import data
from dpal_jax.errors import ConfigError


def _nearest_centroid_accuracy(ds):
  """A linear classifier fitted on the pool: the blobs must be separable for the tests to learn."""
  x_train = ds.x_train.reshape(len(ds.x_train), -1)
  centroids = np.stack([x_train[ds.y_train == k].mean(0) for k in range(ds.num_classes)])
  x_test = ds.x_test.reshape(len(ds.x_test), -1)
  distances = ((x_test[:, None] - centroids[None]) ** 2).sum(-1)
  return np.mean(distances.argmin(1) == ds.y_test)


def test_defaults():
  ds = data.load('synthetic')
  assert (len(ds.x_train), len(ds.x_test)) == (384, 128)
  assert ds.input_shape == (8, 8, 1) and ds.num_classes == 4 and ds.task == 'multiclass'
  assert np.all(np.bincount(ds.y_test) == 32)
  assert _nearest_centroid_accuracy(ds) > 0.9


def test_options_and_determinism():
  ds = data.load('synthetic', num_examples=300, num_classes=3, shape=(10,), test_size=60, seed=5)
  assert ds.x_train.shape == (240, 10) and ds.x_test.shape == (60, 10) and ds.num_classes == 3
  again = data.load('synthetic', num_examples=300, num_classes=3, shape=(10,), test_size=60, seed=5)
  np.testing.assert_array_equal(ds.x_train, again.x_train)
  other = data.load('synthetic', num_examples=300, num_classes=3, shape=(10,), test_size=60, seed=6)
  assert not np.array_equal(ds.x_train, other.x_train)


def test_multilabel():
  ds = data.load('synthetic', multilabel=True, num_classes=5, shape=(16,))
  assert ds.task == 'multilabel' and ds.y_train.shape == (384, 5) and ds.y_train.dtype == np.float32
  assert set(np.unique(ds.y_train)) == {0.0, 1.0}
  # The targets are recoverable from the inputs: least squares on the pool predicts the test labels.
  weights, *_ = np.linalg.lstsq(ds.x_train, ds.y_train, rcond=None)
  assert np.mean((ds.x_test @ weights > 0.5) == ds.y_test) > 0.85


def test_too_few_examples():
  with pytest.raises(ConfigError, match='num_examples'):
    data.load('synthetic', num_examples=5, num_classes=4)
