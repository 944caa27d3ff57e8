"""`synthetic`: a learnable Gaussian-blob problem, generated in milliseconds, for fast tests.

Class k's inputs are N(μ_k, I) with random centres of norm ≈ `separation`, so a linear model separates
them well. With `multilabel=True` each example carries each label independently with probability 0.3
and its input is the sum of its labels' centres plus N(0, I) noise.
"""

from collections.abc import Sequence

import numpy as np

from dpal_jax.data import preprocess
from dpal_jax.data.dataset import Dataset
from dpal_jax.errors import ConfigError


def load(*, data_dir: str | None = None, test_size: int | None = None, seed: int = 0,
         num_examples: int = 512, num_classes: int = 4, shape: Sequence[int] = (8, 8, 1),
         multilabel: bool = False, separation: float = 4.0) -> Dataset:
  """`num_examples` (pool plus test) examples of `shape`; `test_size` defaults to a quarter.

  Deterministic in `seed`; `data_dir` is unused (nothing is read).
  """
  del data_dir
  if num_examples < 2 * num_classes or num_classes < 2:
    raise ConfigError(f'synthetic data needs num_classes >= 2 and num_examples >= 2 * num_classes, '
                      f'got num_examples={num_examples}, num_classes={num_classes}')
  rng = np.random.default_rng(seed)
  dim = int(np.prod(shape))
  centres = rng.normal(size=(num_classes, dim)) * (separation / np.sqrt(dim))
  if multilabel:
    y = (rng.random((num_examples, num_classes)) < 0.3).astype(np.float32)
    x = y @ centres
  else:
    y = rng.permutation(np.arange(num_examples) % num_classes).astype(np.int32)
    x = centres[y]
  x = (x + rng.normal(size=x.shape)).astype(np.float32).reshape((num_examples, *shape))
  test_size = num_examples // 4 if test_size is None else test_size
  x_train, y_train, x_test, y_test = preprocess.split_test(x, y, test_size, seed)
  return Dataset(name='synthetic', x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test,
                 num_classes=num_classes, task='multilabel' if multilabel else 'multiclass')


def load_multilabel(*, data_dir: str | None = None, test_size: int | None = None, seed: int = 0,
                    **kwargs) -> Dataset:
  """The multi-label variant (registry name 'synthetic_multilabel'), for end-to-end tests."""
  return load(data_dir=data_dir, test_size=test_size, seed=seed, multilabel=True, **kwargs)
