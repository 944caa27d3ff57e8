"""`breast_cancer`: scikit-learn's bundled Wisconsin diagnostic breast-cancer data (569 patients, 30
features, malignant 0 / benign 1), offline.

Features are scaled to [-1, 1] with the per-feature minimum and maximum that the dataset's curators
published with it (its description's summary table): fixed, public numbers, so the scaling reads no
pool example and costs no privacy. (Statistics computed from the pool itself would be a release of
private data and would need their own DP budget.) `test_size` patients (default 169, a pool of 400) are
held out by a stratified split seeded by `seed`.

The data name no sites; `dataset.sites` (data.units) deals public ones, independent of every feature
and label, as a hospital's name is. `data_dir` is unused.
"""

import re

import numpy as np

from dpal_jax.data import preprocess
from dpal_jax.data.dataset import Dataset
from dpal_jax.errors import DataError

TEST_SIZE = 169
_RANGE_LINE = re.compile(r'^(.+?):\s+([0-9.]+)\s+([0-9.]+)\s*$')


def published_ranges(description: str, num_features: int) -> tuple[np.ndarray, np.ndarray]:
  """(min, max) per feature from the 'Summary Statistics' table of the dataset's description."""
  rows = [_RANGE_LINE.match(line.strip()) for line in description.splitlines()]
  rows = [(float(m.group(2)), float(m.group(3))) for m in rows if m]
  if len(rows) != num_features:
    raise DataError(f'dataset breast_cancer: its description lists {len(rows)} feature ranges, not '
                    f'{num_features}; the installed scikit-learn is not the one this loader knows')
  lo, hi = np.asarray(rows, np.float64).T
  return lo, hi


def load(*, data_dir: str | None = None, test_size: int | None = None, seed: int = 0) -> Dataset:
  del data_dir
  from sklearn import datasets  # imported here, not above: it takes 2–3 s
  bunch = datasets.load_breast_cancer()
  lo, hi = published_ranges(bunch.DESCR, bunch.data.shape[1])
  x = (np.clip((bunch.data - lo) / (hi - lo), 0.0, 1.0) * 2 - 1).astype(np.float32)
  x_train, y_train, x_test, y_test = preprocess.split_test(
      x, bunch.target.astype(np.int32), TEST_SIZE if test_size is None else test_size, seed)
  return Dataset(name='breast_cancer', x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                 num_classes=2, task='multiclass')
