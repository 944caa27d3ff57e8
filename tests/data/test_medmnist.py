"""MedMNIST from small `.npz` files written here in the official layout."""

import numpy as np
import pytest

from dpal_jax import data
from dpal_jax.errors import DataError


def _write(path, *, size, channels, num_classes, sizes=(12, 4, 5), drop=()):
  rng = np.random.default_rng(0)
  shape = (size, size, 3) if channels == 3 else (size, size)
  arrays = {}
  for split, n in zip(('train', 'val', 'test'), sizes):
    arrays[f'{split}_images'] = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
    arrays[f'{split}_labels'] = (np.arange(n) % num_classes).reshape(n, 1).astype(np.uint8)
  np.savez_compressed(path, **{k: v for k, v in arrays.items() if k not in drop})
  return arrays


def test_bloodmnist_rgb(tmp_path):
  arrays = _write(tmp_path / 'bloodmnist.npz', size=28, channels=3, num_classes=8)
  ds = data.load('bloodmnist', data_dir=str(tmp_path))
  assert ds.name == 'bloodmnist' and ds.num_classes == 8 and ds.task == 'multiclass'
  assert ds.x_train.shape == (12, 28, 28, 3) and ds.x_test.shape == (5, 28, 28, 3)
  np.testing.assert_allclose(ds.x_train, arrays['train_images'] / 127.5 - 1, atol=1e-6)
  np.testing.assert_array_equal(ds.y_test, arrays['test_labels'][:, 0])
  assert ds.y_train.dtype == np.int32


def test_octmnist_grey_at_size_128(tmp_path):
  _write(tmp_path / 'octmnist_128.npz', size=128, channels=1, num_classes=4)
  _write(tmp_path / 'octmnist.npz', size=28, channels=1, num_classes=4)
  ds = data.load('octmnist', data_dir=str(tmp_path), size=128)
  assert ds.input_shape == (128, 128, 1) and ds.num_classes == 4
  assert data.load('octmnist', data_dir=str(tmp_path)).input_shape == (28, 28, 1)


def test_missing_file_names_the_path(tmp_path):
  with pytest.raises(DataError, match=rf'{tmp_path}/bloodmnist_128.npz not found.*zenodo'):
    data.load('bloodmnist', data_dir=str(tmp_path), size=128)


def test_missing_key(tmp_path):
  _write(tmp_path / 'bloodmnist.npz', size=28, channels=3, num_classes=8, drop=('test_labels',))
  with pytest.raises(DataError, match="lacks \\['test_labels'\\]"):
    data.load('bloodmnist', data_dir=str(tmp_path))


def test_wrong_image_size_for_the_file(tmp_path):
  _write(tmp_path / 'octmnist_64.npz', size=28, channels=1, num_classes=4)
  with pytest.raises(DataError, match='size 64'):
    data.load('octmnist', data_dir=str(tmp_path), size=64)


def test_labels_out_of_range(tmp_path):
  _write(tmp_path / 'octmnist.npz', size=28, channels=1, num_classes=6)
  with pytest.raises(DataError, match=r'outside \[0, 4\)'):
    data.load('octmnist', data_dir=str(tmp_path))


def test_unknown_size(tmp_path):
  with pytest.raises(DataError, match='not a MedMNIST size'):
    data.load('octmnist', data_dir=str(tmp_path), size=32)
