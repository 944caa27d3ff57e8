"""CheXpert (`dataset.name: chexpert`) read from the dataset's own layout, as the original prepares it.

`dataset.data_dir` is the folder holding `CheXpert-v1.0-small/` (or that folder itself): `train.csv` is
the pool; `test.csv` (e.g. the official test labels placed there by the user) is the test split when
present, `valid.csv` otherwise. CSV paths are relative to the folder above `CheXpert-v1.0-small/`.

Images: halved with a box filter while the short side is ≥ 2·size, bicubic resize of the short side to
`size`, centre crop size×size, grey replicated to RGB, scaled to [−1, 1] (the original's
`split_resize.py` + Normalize(0.5, 0.5), without its intermediate JPEG). Decoded splits are cached as
float32 `.npy` files under `<folder>/.dpal_cache/` (keyed by the CSV's content and the size) and
memory-mapped on later loads: the full train split at 192 px is ≈ 99 GB, as the original's memmaps.

Labels (14, in the original's order; the first five are the competition labels the metric uses):
blank → 0, uncertain (−1) → 0.8 for Atelectasis, Edema and Pleural Effusion (U-Ones with label
smoothing) and 0.2 for the others (U-Zeros with smoothing), as the original.
"""

import csv
import hashlib
import os
import pathlib

import numpy as np
from PIL import Image

from dpal_jax.data.dataset import Dataset
from dpal_jax.errors import DataError

FOLDER = 'CheXpert-v1.0-small'
LABELS = ('Atelectasis', 'Cardiomegaly', 'Consolidation', 'Edema', 'Pleural Effusion', 'No Finding',
          'Enlarged Cardiomediastinum', 'Lung Opacity', 'Lung Lesion', 'Pneumonia', 'Pneumothorax',
          'Pleural Other', 'Fracture', 'Support Devices')
COMPETITION_LABELS = (0, 1, 2, 3, 4)  # columns of the mean AUC (config: evaluation of chexpert)
_UNCERTAIN_ONES = ('Atelectasis', 'Edema', 'Pleural Effusion')


def load(*, data_dir: str | None = None, test_size: int | None = None, seed: int = 0,
         image_size: int = 192) -> Dataset:
  """Pool = train.csv, test = test.csv (or valid.csv); `test_size`/`seed` do not apply."""
  del test_size, seed  # official splits
  root = _root(data_dir)
  test_csv = root / 'test.csv' if (root / 'test.csv').exists() else root / 'valid.csv'
  x_train, y_train = _split(root, root / 'train.csv', image_size)
  x_test, y_test = _split(root, test_csv, image_size)
  return Dataset(name='chexpert', x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                 num_classes=len(LABELS), task='multilabel',
                 metric_labels=COMPETITION_LABELS)


def _root(data_dir: str | None) -> pathlib.Path:
  if data_dir is None:
    raise DataError('dataset chexpert: set dataset.data_dir to the folder holding '
                    f'{FOLDER}/ (train.csv, valid.csv and the images; the dataset needs a '
                    'registration at stanfordmlgroup.github.io/competitions/chexpert)')
  for root in (pathlib.Path(data_dir) / FOLDER, pathlib.Path(data_dir)):
    if (root / 'train.csv').exists():
      return root
  raise DataError(f'dataset chexpert: no {FOLDER}/train.csv under {data_dir} (dataset.data_dir)')


def _split(root: pathlib.Path, csv_path: pathlib.Path, size: int):
  if not csv_path.exists():
    raise DataError(f'dataset chexpert: {csv_path} is missing')
  with open(csv_path, newline='') as f:
    rows = list(csv.DictReader(f))
  missing = [c for c in ('Path', *LABELS) if rows and c not in rows[0]]
  if not rows or missing:
    raise DataError(f'dataset chexpert: {csv_path} has no rows or lacks columns {missing}')
  labels = np.array([[_target(row[name], name) for name in LABELS] for row in rows], np.float32)
  digest = hashlib.sha1(csv_path.read_bytes()).hexdigest()[:16]
  cache = root / '.dpal_cache' / f'{csv_path.stem}_{size}px_{digest}.npy'
  if not cache.exists():
    _decode_to_cache([_image_path(root, row['Path']) for row in rows], size, cache)
  return np.load(cache, mmap_mode='r'), labels


def _target(value: str, name: str) -> float:
  value = value.strip()
  if value in ('', 'nan'):
    return 0.0
  if float(value) == -1.0:
    return 0.8 if name in _UNCERTAIN_ONES else 0.2
  return float(value)


def _image_path(root: pathlib.Path, path: str) -> pathlib.Path:
  return root / path.removeprefix(FOLDER + '/')


def _decode_to_cache(paths: list[pathlib.Path], size: int, cache: pathlib.Path) -> None:
  """Writes [N, size, size, 3] float32 in [−1, 1] to `cache` atomically (a crash leaves no cache)."""
  cache.parent.mkdir(exist_ok=True)
  partial = cache.with_suffix('.partial.npy')
  out = np.lib.format.open_memmap(partial, mode='w+', dtype=np.float32,
                                  shape=(len(paths), size, size, 3))
  for i, path in enumerate(paths):
    out[i] = preprocess_image(path, size)
  out.flush()
  del out
  os.replace(partial, cache)


def preprocess_image(path: pathlib.Path, size: int) -> np.ndarray:
  """One image as [size, size, 3] float32 in [−1, 1] (the original's resize, crop and normalise)."""
  try:
    image = Image.open(path)
    image.load()
  except OSError as e:
    raise DataError(f'dataset chexpert: cannot read image {path}: {e}') from e
  while min(image.size) >= 2 * size:
    image = image.resize((image.width // 2, image.height // 2), Image.Resampling.BOX)
  scale = size / min(image.size)
  image = image.resize((max(size, round(image.width * scale)), max(size, round(image.height * scale))),
                       Image.Resampling.BICUBIC)
  left, top = (image.width - size) // 2, (image.height - size) // 2
  image = image.crop((left, top, left + size, top + size)).convert('RGB')
  return np.asarray(image, np.float32) / 127.5 - 1.0
