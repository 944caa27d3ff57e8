"""Image datasets prepared by tensorflow-datasets, read without TensorFlow (`cifar10`, `svhn_cropped`,
`mnist`, `fashion_mnist`).

The dataset must already be prepared in `data_dir` (tfds' default directory when None) in the
array_record format, which `builder.as_data_source` reads with random access and no TensorFlow. No code
path here downloads: a missing or unreadable copy ends in a DataError saying how to prepare it. Each
split is read once into memory in chunks of `__getitems__` (≈ 2.5k 32×32×3 examples/s on one core,
about 1.5× single-example reads; PNG decoding dominates).
The official train split is the pool and the official test split the test set, so `test_size` and
`seed` do not apply. Pixels: CIFAR-10 is normalised with the original's per-channel mean/std; the others
are scaled to [-1, 1] (Normalize(0.5, 0.5)), the original's transform for its other image datasets.
"""

import pathlib
from collections.abc import Sequence

import numpy as np
import tensorflow_datasets as tfds

from dpal_jax.data import preprocess
from dpal_jax.data.dataset import Dataset
from dpal_jax.errors import DataError

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2471, 0.2435, 0.2616)
_CHUNK = 1024


def load_cifar10(*, data_dir: str | None = None, test_size: int | None = None,
                 seed: int = 0) -> Dataset:
  del test_size, seed  # official test split
  return load_prepared('cifar10', data_dir=data_dir, mean=CIFAR10_MEAN, std=CIFAR10_STD)


def load_svhn_cropped(*, data_dir: str | None = None, test_size: int | None = None,
                      seed: int = 0) -> Dataset:
  del test_size, seed  # official test split; the 'extra' split is not used
  return load_prepared('svhn_cropped', data_dir=data_dir)


def load_mnist(*, data_dir: str | None = None, test_size: int | None = None,
               seed: int = 0) -> Dataset:
  del test_size, seed  # official test split
  return load_prepared('mnist', data_dir=data_dir)


def load_fashion_mnist(*, data_dir: str | None = None, test_size: int | None = None,
                       seed: int = 0) -> Dataset:
  del test_size, seed  # official test split
  return load_prepared('fashion_mnist', data_dir=data_dir)


def load_prepared(tfds_name: str, *, data_dir: str | None = None,
                  mean: Sequence[float] = preprocess.UNIT_RANGE[0],
                  std: Sequence[float] = preprocess.UNIT_RANGE[1]) -> Dataset:
  """The 'train' and 'test' splits of a prepared tfds dataset with 'image' and 'label' features."""
  builder = tfds.builder(tfds_name, data_dir=data_dir)
  train, test = _data_sources(builder, tfds_name)
  x_train, y_train = _read_split(train, tfds_name, 'train')
  x_test, y_test = _read_split(test, tfds_name, 'test')
  return Dataset(name=tfds_name,
                 x_train=preprocess.normalize_images(x_train, mean, std), y_train=y_train,
                 x_test=preprocess.normalize_images(x_test, mean, std), y_test=y_test,
                 num_classes=builder.info.features['label'].num_classes, task='multiclass')


def _data_sources(builder, tfds_name: str):
  """Random-access sources of 'train' and 'test'; never prepares (that would download)."""
  try:
    return builder.as_data_source(split=['train', 'test'])
  except (ValueError, NotImplementedError, OSError) as e:
    prepare = (f'prepare it once (TensorFlow is needed for that step only): '
               f"pip install 'dpal_jax[tf]' && tfds build {tfds_name} "
               f'--data_dir={pathlib.Path(builder.data_dir).parents[1]} --file_format=array_record')
    if not builder.is_prepared():
      raise DataError(f'dataset {tfds_name}: no prepared copy in {builder.data_dir} '
                      f'(dataset.data_dir); {prepare}') from e
    if builder.info.file_format not in tfds.core.FileFormat.with_random_access():
      raise DataError(f'dataset {tfds_name}: the copy in {builder.data_dir} is stored as '
                      f'{builder.info.file_format.value}, which needs TensorFlow to read; '
                      f'{prepare}') from e
    raise


def _read_split(source, tfds_name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
  """(uint8 images [N, H, W, C], int32 labels [N]) of one split, read in chunks."""
  n = len(source)
  if n == 0:
    raise DataError(f'dataset {tfds_name}: split {split!r} is empty; re-prepare the dataset')
  images = np.empty((n, *np.shape(source[0]['image'])), np.uint8)
  labels = np.empty(n, np.int32)
  for start in range(0, n, _CHUNK):
    examples = source.__getitems__(list(range(start, min(n, start + _CHUNK))))
    images[start:start + len(examples)] = np.stack([e['image'] for e in examples])
    labels[start:start + len(examples)] = [e['label'] for e in examples]
  return images, labels
