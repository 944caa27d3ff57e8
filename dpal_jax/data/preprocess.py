"""Preprocessing shared by the loaders: pixel normalisation and the seeded, stratified test split.

Normalisation is the original's `ToTensor` + `Normalize(mean, std)` (x / max_value, then per-channel
(x − mean) / std), applied once to the whole array; there is no augmentation anywhere (docs/original_dpal.md §f).
"""

from collections.abc import Sequence

import numpy as np

from dpal_jax.errors import ConfigError

# Normalize(0.5, 0.5): pixels to [-1, 1] (the original's MedMNIST transform; ours for MNIST-like data).
UNIT_RANGE = ((0.5,), (0.5,))


def normalize_images(images: np.ndarray, mean: Sequence[float], std: Sequence[float],
                     max_value: float = 255.0) -> np.ndarray:
  """[N, H, W, C] pixels in [0, max_value] -> float32 (x / max_value − mean) / std, per channel.

  Works in place on one float32 copy, so the peak memory is the input plus one float32 array.
  """
  x = images.astype(np.float32)
  x *= np.float32(1.0 / max_value)
  x -= np.asarray(mean, np.float32)
  x /= np.asarray(std, np.float32)
  return x


def split_test(x: np.ndarray, y: np.ndarray, test_size: int, seed: int):
  """(x_pool, y_pool, x_test, y_test): `test_size` examples held out, fixed by `seed`.

  Stratified for 1-D labels: each class gives its share of `test_size` (largest remainders round),
  so both parts keep the class proportions. Multi-label targets are split uniformly at random. Only
  NumPy's seeded Generator decides, so a split stays the same across library versions.
  """
  n = len(y)
  classes, class_of = np.unique(y, return_inverse=True) if y.ndim == 1 else (None, np.zeros(n, int))
  min_size = 1 if classes is None else len(classes)
  if not isinstance(test_size, (int, np.integer)) or not min_size <= test_size <= n - min_size:
    raise ConfigError(f'dataset.test_size ({test_size!r}) must be an integer between {min_size} and '
                      f'{n - min_size} for a dataset of {n} examples')
  counts = np.bincount(class_of)
  share = counts * test_size / n
  take = np.floor(share).astype(int)
  take[np.argsort(take - share, kind='stable')[:test_size - take.sum()]] += 1
  rng = np.random.default_rng(seed)
  test = np.concatenate([rng.permutation(np.flatnonzero(class_of == c))[:k]
                         for c, k in enumerate(take)])
  is_test = np.zeros(n, bool)
  is_test[test] = True
  pool, test = rng.permutation(np.flatnonzero(~is_test)), rng.permutation(test)
  return x[pool], y[pool], x[test], y[test]
