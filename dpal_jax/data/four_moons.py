"""`four_moons`: the heteroskedastic toy of LHD (Khosla et al., ECAI 2023), 2-D points in 4 classes.

Two `sklearn.datasets.make_moons(6000, noise=0.1)` pairs, the second shifted by (+4, 0) and labelled
2 and 3, give 12,000 clean points: four moons of 3,000. As in the paper's script (both pairs drawn with
one `random_state`), the second pair is the first one shifted, point for point. The pool holds moons 1,
2 and 3 with their true labels (9,000 points) and moon 0 with labels drawn uniformly from {0, 1, 2, 3},
appended 6 more times with the same labels (7 × 3,000 = 21,000 noisy points): 30,000 points, 70 % noisy,
in a seeded random order, `noisy` marking the moon-0 points. The test set is the 12,000 clean points with their true
labels, so a model that learns moon 0's noise loses up to a quarter of its test accuracy. Deterministic
in `seed`; `data_dir` is unused (nothing is read).
"""

import numpy as np

from dpal_jax.data.dataset import Dataset
from dpal_jax.errors import ConfigError

POINTS_PER_PAIR = 6000
NOISE = 0.1
SHIFT = (4.0, 0.0)
NUM_CLASSES = 4
NOISY_MOON = 0
COPIES = 7          # moon 0 once and appended 6 more times
TEST_SIZE = 2 * POINTS_PER_PAIR
POOL_SIZE = TEST_SIZE + (COPIES - 1) * POINTS_PER_PAIR // 2   # 9,000 clean + 21,000 noisy = 30,000


def load(*, data_dir: str | None = None, test_size: int | None = None, seed: int = 0) -> Dataset:
  """The Four Moons pool (30,000 points, `noisy` marked) and its clean test set (12,000 points)."""
  del data_dir
  if test_size not in (None, TEST_SIZE):
    raise ConfigError(f'dataset.test_size ({test_size!r}) must be None for four_moons, whose test set '
                      f'is its {TEST_SIZE} clean points')
  from sklearn import datasets  # imported here, not above: it takes 2–3 s
  rng = np.random.default_rng(seed)
  pair_x, pair_y = datasets.make_moons(POINTS_PER_PAIR, noise=NOISE, random_state=int(rng.integers(2**31)))
  x = np.concatenate([pair_x, pair_x + np.asarray(SHIFT)]).astype(np.float32)
  y = np.concatenate([pair_y, pair_y + 2]).astype(np.int32)
  moon = y == NOISY_MOON
  y_relabelled = rng.integers(0, NUM_CLASSES, int(moon.sum())).astype(np.int32)
  x_pool = np.concatenate([x[~moon], np.tile(x[moon], (COPIES, 1))])
  y_pool = np.concatenate([y[~moon], np.tile(y_relabelled, COPIES)])
  noisy = np.arange(len(x_pool)) >= int((~moon).sum())
  order = rng.permutation(len(x_pool))
  return Dataset(name='four_moons', x_train=x_pool[order], y_train=y_pool[order], x_test=x, y_test=y,
                 num_classes=NUM_CLASSES, task='multiclass', noisy=noisy[order])
