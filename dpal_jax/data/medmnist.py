"""MedMNIST (`bloodmnist`, `octmnist`) from the official `.npz` files in a data directory.

File names and keys are the official ones: `{name}.npz` holds the 28×28 images, `{name}_{size}.npz`
the MedMNIST+ sizes 64, 128 and 224 (the original DPAL used 128); keys `train_images`,
`train_labels`, `val_images`, `val_labels`, `test_images`, `test_labels`, with uint8 images
[N, H, W] (grey) or [N, H, W, 3] and labels [N, 1]. `data_dir` defaults to `~/.medmnist`, where the
`medmnist` package stores its downloads. As in the original, the official train split is the pool,
the test split is the test set, the validation split is unused (so `test_size` and `seed` do not
apply), and pixels are scaled to [-1, 1] (Normalize(0.5, 0.5)).
"""

import os

import numpy as np

from dpal_jax.data import preprocess
from dpal_jax.data.dataset import Dataset
from dpal_jax.errors import DataError

SIZES = (28, 64, 128, 224)
DEFAULT_DIR = '~/.medmnist'


def load_bloodmnist(*, data_dir: str | None = None, test_size: int | None = None, seed: int = 0,
                    size: int = 28) -> Dataset:
  """BloodMNIST: 8 blood-cell types, RGB; 11,959 train / 3,421 test images."""
  del test_size, seed  # official test split
  return load_npz('bloodmnist', num_classes=8, data_dir=data_dir, size=size)


def load_octmnist(*, data_dir: str | None = None, test_size: int | None = None, seed: int = 0,
                  size: int = 28) -> Dataset:
  """OCTMNIST: 4 retinal OCT classes, grey; 97,477 train / 1,000 test images."""
  del test_size, seed  # official test split
  return load_npz('octmnist', num_classes=4, data_dir=data_dir, size=size)


def load_npz(name: str, *, num_classes: int, data_dir: str | None, size: int) -> Dataset:
  if size not in SIZES:
    raise DataError(f'dataset {name}: image size {size} is not a MedMNIST size; choose one of {SIZES}')
  file_name = f'{name}.npz' if size == 28 else f'{name}_{size}.npz'
  path = os.path.join(os.path.expanduser(data_dir or DEFAULT_DIR), file_name)
  if not os.path.isfile(path):
    raise DataError(f'dataset {name}: {path} not found; download the official {file_name} from '
                    f'https://zenodo.org/records/10519652 (or with the medmnist package) into '
                    f'dataset.data_dir ({data_dir or DEFAULT_DIR})')
  with np.load(path) as arrays:
    x_train, y_train = _split(arrays, path, 'train', size)
    x_test, y_test = _split(arrays, path, 'test', size)
  return Dataset(name=name, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                 num_classes=num_classes, task='multiclass')


def _split(arrays, path: str, split: str, size: int) -> tuple[np.ndarray, np.ndarray]:
  """Normalised NHWC float32 images and int32 labels of one split, checked against the layout."""
  keys = (f'{split}_images', f'{split}_labels')
  missing = [key for key in keys if key not in arrays.files]
  if missing:
    raise DataError(f'{path} lacks {missing} (holds {arrays.files}); it is not an official '
                    'MedMNIST file')
  images, labels = arrays[keys[0]], arrays[keys[1]]
  if images.ndim == 3:
    images = images[..., None]
  if (images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:3] != (size, size)
      or images.shape[3] not in (1, 3)):
    raise DataError(f'{path}: {keys[0]} must be uint8 [N, {size}, {size}(, 3)], got '
                    f'{images.dtype} {images.shape}; is it the file for size {size}?')
  if labels.shape != (len(images), 1):
    raise DataError(f'{path}: {keys[1]} must have shape [{len(images)}, 1], got {labels.shape}')
  return (preprocess.normalize_images(images, *preprocess.UNIT_RANGE),
          labels[:, 0].astype(np.int32))
