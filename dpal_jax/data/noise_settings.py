"""Heteroskedastic pools: `dataset.noise` appends structure-less or mislabelled examples to an image pool.

The settings of LHD (Khosla et al., ECAI 2023). With a clean pool of N images in K classes and
m = `dataset.noise_mult`, M = round(m · N) noisy examples are generated and appended to the pool:

- `clean`: nothing; the pool is unchanged.
- `blank`: M black images, each with a label uniform on {0..K−1} (best accuracy on them 1/K).
- `diverse`: 100 distinct solid colours c_j, each given 3 labels L_j ⊂ {0..K−1} drawn without replacement; each
  of the M images is a uniform c_j with a label uniform on L_j (best accuracy ≤ 1/3).
- `class`: every clean image of class 1 relabelled uniformly on {0..K−1} (and marked noisy), plus M
  copies of images drawn uniformly from the first 100 class-1 images, each with a fresh uniform label
  (best accuracy on class 1: 1/K).

Black is the darkest value of each channel in the clean pool and a solid colour is one value per
channel, uniform among 256 levels between the darkest and brightest: for 8-bit pixels under any
per-channel affine normalisation, the raw values 0…255 whenever the pool reaches 0 and 255 in every
channel (on one channel, grey levels). The combined pool is shuffled, so an example's position says nothing about whether it is noisy. The test
set is never touched: under `class` it keeps the true labels, so class 1 cannot be learned.

`Dataset.noisy` marks each pool example clean (False) or noisy (True). Strategies never read it; the
loops report how many selected examples are noisy. For `blank` and `diverse` the mark is a function of
the public generator alone; under `class` it also says which pool images were of class 1, so there the
count is a benchmark figure for public data. Everything is drawn from `numpy.random.default_rng(seed)`.
"""

import dataclasses

import numpy as np

from dpal_jax import validate
from dpal_jax.data.dataset import Dataset
from dpal_jax.errors import ConfigError

SETTINGS = ('clean', 'blank', 'diverse', 'class')
NUM_COLOURS = 100          # diverse: solid colours
LABELS_PER_COLOUR = 3      # diverse: labels of each colour, drawn without replacement
LEVELS = 256               # diverse: levels of each channel between the darkest and brightest
NOISY_CLASS = 1            # class: the relabelled class (CIFAR-10's automobile)
SOURCE_IMAGES = 100        # class: copies are drawn from the first 100 images of NOISY_CLASS


def apply(dataset: Dataset, setting: str, noise_mult: float, seed: int) -> Dataset:
  """`dataset` with the noisy examples of `setting` appended to its pool and `noisy` marking them.

  Args:
    dataset: a multiclass image dataset (float32 x of shape [N, H, W, C]); with 'clean' any dataset.
    setting: one of SETTINGS (config field `dataset.noise`).
    noise_mult: m ≥ 0 (config field `dataset.noise_mult`): round(m · N) examples are generated.
    seed: the generator's seed; the same seed gives the same pool.

  Returns:
    The dataset unchanged for 'clean'; otherwise a new Dataset whose pool holds the clean and the noisy
    examples in a seeded random order, with `noisy` (bool [pool size]) and the same test set.

  Raises:
    ConfigError naming `dataset.noise` when the setting does not fit the data (not multiclass images,
    fewer than 3 classes for 'diverse', no image of class 1 for 'class').

  >>> import numpy as np
  >>> x = np.zeros((8, 2, 2, 1), np.float32)
  >>> y = np.arange(8, dtype=np.int32) % 4
  >>> clean = Dataset('toy', x, y, x, y, num_classes=4, task='multiclass')
  >>> noisy = apply(clean, 'blank', 0.5, seed=0)
  >>> len(noisy.x_train), int(noisy.noisy.sum()), len(noisy.x_test)
  (12, 4, 8)
  """
  validate.choice('dataset.noise', setting, SETTINGS)
  mult = validate.number('dataset.noise_mult', noise_mult, lo=0)
  if setting == 'clean':
    return dataset
  _check_fits(dataset, setting)
  rng = np.random.default_rng(seed)
  x, y, k = dataset.x_train, dataset.y_train, dataset.num_classes
  count = int(round(mult * len(x)))
  clean_noisy = np.zeros(len(x), bool)
  if setting == 'blank':
    extra_x = np.broadcast_to(x.min(axis=(0, 1, 2)), (count, *x.shape[1:]))   # a view: nothing copied
    extra_y = rng.integers(0, k, count)
  elif setting == 'diverse':
    darkest, brightest = x.min(axis=(0, 1, 2)), x.max(axis=(0, 1, 2))
    colours = darkest + (brightest - darkest) * (_distinct_levels(rng, x.shape[-1]) / (LEVELS - 1))
    colour_labels = np.stack([rng.choice(k, LABELS_PER_COLOUR, replace=False)
                              for _ in range(NUM_COLOURS)])
    colour = rng.integers(0, NUM_COLOURS, count)
    extra_x = np.broadcast_to(colours[colour, None, None, :], (count, *x.shape[1:]))
    extra_y = colour_labels[colour, rng.integers(0, LABELS_PER_COLOUR, count)]
  else:
    clean_noisy = y == NOISY_CLASS
    y = np.where(clean_noisy, rng.integers(0, k, len(y)), y)
    source = np.flatnonzero(clean_noisy)[:SOURCE_IMAGES]
    extra_x = x[source[rng.integers(0, len(source), count)]]
    extra_y = rng.integers(0, k, count)
  where = rng.permutation(len(x) + count)   # the pool position of each clean, then each noisy example
  return dataclasses.replace(
      dataset, x_train=_placed(where, x, extra_x), y_train=_placed(where, y, extra_y).astype(np.int32),
      noisy=_placed(where, clean_noisy, np.ones(count, bool)))


def _placed(where: np.ndarray, clean: np.ndarray, extra: np.ndarray) -> np.ndarray:
  """clean ++ extra, row i at position where[i]: one new array (a concatenation would make two)."""
  out = np.empty((len(where), *clean.shape[1:]), clean.dtype)
  out[where[:len(clean)]] = clean
  out[where[len(clean):]] = extra
  return out


def _distinct_levels(rng: np.random.Generator, channels: int) -> np.ndarray:
  """NUM_COLOURS distinct colours, uniform among all: [NUM_COLOURS, channels] levels in [0, LEVELS)."""
  levels = np.zeros((0, channels), np.int64)
  while len(levels) < NUM_COLOURS:   # more than one draw only when colours collide (one channel)
    levels = np.unique(np.concatenate([levels, rng.integers(0, LEVELS, (NUM_COLOURS, channels))]),
                       axis=0)
  return rng.permutation(levels)[:NUM_COLOURS]


def _check_fits(dataset: Dataset, setting: str) -> None:
  x = dataset.x_train
  if dataset.noisy is not None:
    raise ConfigError(f'dataset.noise ({setting!r}): dataset {dataset.name!r} is noisy by construction; '
                      "set dataset.noise to 'clean'")
  if dataset.task != 'multiclass' or x.dtype != np.float32 or x.ndim != 4:
    raise ConfigError(
        f'dataset.noise ({setting!r}) needs a multiclass image dataset [N, H, W, C]; dataset '
        f'{dataset.name!r} is {dataset.task} with inputs {x.dtype} {x.shape[1:]}: set dataset.noise to '
        "'clean' or choose an image dataset")
  if setting == 'diverse' and dataset.num_classes < LABELS_PER_COLOUR:
    raise ConfigError(f"dataset.noise ('diverse') gives each colour {LABELS_PER_COLOUR} distinct labels, "
                      f'but dataset {dataset.name!r} has {dataset.num_classes} classes; choose '
                      "dataset.noise 'blank' or 'class'")
  if setting == 'class' and not np.any(dataset.y_train == NOISY_CLASS):
    raise ConfigError(f"dataset.noise ('class') relabels class {NOISY_CLASS}, which dataset "
                      f"{dataset.name!r}'s pool does not hold; choose dataset.noise 'blank' or 'diverse'")

