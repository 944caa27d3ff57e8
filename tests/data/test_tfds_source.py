"""tfds image datasets, read through `as_data_source` without TensorFlow and without any download.

The registered loaders run under `tfds.testing.mock_data` (policy USE_CODE: examples generated from
each builder's feature spec; USE_FILES would need the datasets' metadata files, which tfds does not
ship). The real array_record path runs on a tiny dataset prepared here with its own builder.
"""

import time
from unittest import mock

import numpy as np
import PIL.Image
import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets.core.data_sources import base

from dpal_jax import data
from dpal_jax.data import tfds_source
from dpal_jax.errors import DataError

SHAPES = {'cifar10': (32, 32, 3), 'svhn_cropped': (32, 32, 3), 'mnist': (28, 28, 1),
          'fashion_mnist': (28, 28, 1)}


@pytest.fixture(autouse=True)
def no_download():
  """Fails any test in which something tries to prepare (download) a dataset."""
  with mock.patch.object(tfds.core.DatasetBuilder, 'download_and_prepare',
                         side_effect=AssertionError('a dataset download was attempted')):
    yield


@pytest.fixture
def mock_tfds():
  # tfds 4.9.10's mock binds the data source's `__getitems__` without `self` (TypeError: missing
  # 'record_keys'), so batched reads fall back to tfds' own single-example `__getitem__`.
  with tfds.testing.mock_data(num_examples=10, policy=tfds.testing.MockPolicy.USE_CODE), \
       mock.patch.object(base.BaseDataSource, '__getitems__',
                         lambda self, keys: [self[k] for k in keys]):
    yield


@pytest.mark.parametrize('name', sorted(SHAPES))
def test_registered_loaders_under_mock_data(name, mock_tfds, monkeypatch):
  monkeypatch.setattr(tfds_source, '_CHUNK', 4)  # several chunks, the last one partial
  ds = data.load(name, data_dir='/nonexistent/tfds')
  assert ds.name == name and ds.num_classes == 10 and ds.task == 'multiclass'
  assert ds.x_train.shape == (10, *SHAPES[name]) and ds.x_test.shape == (10, *SHAPES[name])
  assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int32


def test_cifar10_is_normalised_with_its_mean_and_std(mock_tfds):
  ds = data.load('cifar10')
  pixels = ds.x_train * np.float32(tfds_source.CIFAR10_STD) + np.float32(tfds_source.CIFAR10_MEAN)
  np.testing.assert_allclose(pixels * 255, np.round(pixels * 255), atol=1e-3)  # back to integers
  assert 0 <= (pixels * 255).round().min() and (pixels * 255).round().max() <= 255


def test_mnist_is_scaled_to_unit_range(mock_tfds):
  x = data.load('mnist').x_train
  assert -1 <= x.min() and x.max() <= 1 and x.min() < -0.9


@pytest.mark.parametrize('name', sorted(SHAPES))
def test_missing_dataset_names_the_directory_and_the_fix(name, tmp_path):
  start = time.perf_counter()
  with pytest.raises(DataError) as info:
    data.load(name, data_dir=str(tmp_path))
  message = str(info.value)
  assert f'{tmp_path}/{name}/' in message
  assert f'tfds build {name} --data_dir={tmp_path} --file_format=array_record' in message
  assert time.perf_counter() - start < 10  # never a network attempt


class TinyImages(tfds.core.GeneratorBasedBuilder):
  """Example i is an 8×8×3 image filled with the value i, labelled i % 3."""
  VERSION = tfds.core.Version('1.0.0')

  def _info(self):
    return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
        'image': tfds.features.Image(shape=(8, 8, 3)),
        'label': tfds.features.ClassLabel(num_classes=3)}))

  def _split_generators(self, dl_manager):
    del dl_manager
    return {'train': self._generate_examples(range(0, 23)),
            'test': self._generate_examples(range(100, 106))}

  def _generate_examples(self, ids):
    for i in ids:
      yield i, {'image': PIL.Image.fromarray(np.full((8, 8, 3), i, np.uint8)), 'label': i % 3}


@pytest.fixture(scope='module')
def prepared_dir(tmp_path_factory):
  data_dir = tmp_path_factory.mktemp('tfds')
  TinyImages(data_dir=str(data_dir), file_format='array_record').download_and_prepare()
  return data_dir


def test_reads_a_prepared_array_record_dataset(prepared_dir, monkeypatch):
  monkeypatch.setattr(tfds_source, '_CHUNK', 5)
  ds = tfds_source.load_prepared('tiny_images', data_dir=str(prepared_dir))
  assert ds.x_train.shape == (23, 8, 8, 3) and ds.x_test.shape == (6, 8, 8, 3)
  assert ds.num_classes == 3
  for x, y, ids in ((ds.x_train, ds.y_train, range(23)), (ds.x_test, ds.y_test, range(100, 106))):
    pixel_ids = np.round((x + 1) * 127.5).astype(int)
    assert np.all(pixel_ids == pixel_ids[:, :1, :1, :1])  # each image read whole and in one piece
    example_ids = pixel_ids[:, 0, 0, 0]
    assert sorted(example_ids) == list(ids)
    np.testing.assert_array_equal(y, example_ids % 3)  # each label stays with its image


def test_data_dir_is_honoured(prepared_dir, tmp_path):
  with pytest.raises(DataError, match=f'{tmp_path}/tiny_images/1.0.0'):
    tfds_source.load_prepared('tiny_images', data_dir=str(tmp_path))
