"""noise_settings: sizes, noisy share and structure of each setting; seeded; the test set untouched."""

import doctest
import pathlib

import numpy as np
import pytest
from scipy import stats

from configs import mlp_pixels
from dpal_jax import config_schema
from dpal_jax import data
from dpal_jax.data import noise_settings
from dpal_jax.data.dataset import Dataset
from dpal_jax.errors import ConfigError
from tests.configs import tiny

N, K, SHAPE = 600, 10, (6, 6, 3)


def _clean(num_classes=K, shape=SHAPE, task='multiclass', n=N):
  """Images with distinct rows in [-1, 1], labels cycling over the classes."""
  rng = np.random.default_rng(1)
  x = rng.uniform(-1, 1, (n, *shape)).astype(np.float32)
  y = (np.arange(n) % num_classes).astype(np.int32)
  if task == 'multilabel':
    y = np.eye(num_classes, dtype=np.float32)[y]
  return Dataset('toy', x, y, x[:50].copy(), y[:50].copy(), num_classes=num_classes, task=task)


def _rows(x):
  return {row.tobytes() for row in x}


def _uniform(labels, num_classes):
  """True unless a chi-square test rejects uniform labels at the 0.1 % level."""
  counts = np.bincount(labels, minlength=num_classes)
  return len(counts) == num_classes and stats.chisquare(counts).pvalue > 1e-3


def test_doctests_pass():
  result = doctest.testmod(noise_settings)
  assert result.attempted >= 1 and result.failed == 0


def test_clean_leaves_the_dataset_as_it_is():
  clean = _clean()
  assert noise_settings.apply(clean, 'clean', 4.0, seed=0) is clean
  assert clean.noisy is None


@pytest.mark.parametrize('setting', ['blank', 'diverse', 'class'])
@pytest.mark.parametrize('mult', [0.5, 1.0, 4.0])
def test_sizes_and_noisy_share(setting, mult):
  clean = _clean()
  noisy = noise_settings.apply(clean, setting, mult, seed=0)
  extra = int(round(mult * N))
  relabelled = N // K if setting == 'class' else 0
  assert len(noisy.x_train) == len(noisy.y_train) == len(noisy.noisy) == N + extra
  assert noisy.noisy.sum() == extra + relabelled
  assert noisy.noisy.mean() == pytest.approx((extra + relabelled) / (N + extra))


@pytest.mark.parametrize('setting', ['blank', 'diverse', 'class'])
def test_the_test_set_is_untouched(setting):
  clean = _clean()
  noisy = noise_settings.apply(clean, setting, 2.0, seed=0)
  assert noisy.x_test is clean.x_test and noisy.y_test is clean.y_test
  assert noisy.num_classes == K and noisy.task == 'multiclass'


@pytest.mark.parametrize('setting', ['blank', 'diverse'])
def test_clean_examples_are_kept_with_their_labels(setting):
  clean = _clean()
  noisy = noise_settings.apply(clean, setting, 1.0, seed=0)
  kept = ~noisy.noisy
  pairs = lambda x, y: sorted(zip((r.tobytes() for r in x), y.tolist()))  # noqa: E731
  assert pairs(noisy.x_train[kept], noisy.y_train[kept]) == pairs(clean.x_train, clean.y_train)


def test_the_pool_is_shuffled():
  noisy = noise_settings.apply(_clean(), 'blank', 1.0, seed=0).noisy
  assert 0.4 < noisy[:N].mean() < 0.6     # not clean first and noise last


def test_blank_images_are_black_with_uniform_labels():
  clean = _clean()
  noisy = noise_settings.apply(clean, 'blank', 4.0, seed=0)
  x, y = noisy.x_train[noisy.noisy], noisy.y_train[noisy.noisy]
  np.testing.assert_array_equal(x, np.broadcast_to(clean.x_train.min(axis=(0, 1, 2)), x.shape))
  assert _uniform(y, K)


def test_diverse_has_100_solid_colours_with_3_labels_each():
  clean = _clean()
  noisy = noise_settings.apply(clean, 'diverse', 4.0, seed=0)
  x, y = noisy.x_train[noisy.noisy], noisy.y_train[noisy.noisy]
  np.testing.assert_array_equal(x, np.broadcast_to(x[:, :1, :1, :], x.shape))   # solid
  colours, colour_of = np.unique(x[:, 0, 0, :], axis=0, return_inverse=True)
  assert len(colours) == noise_settings.NUM_COLOURS   # 2,400 draws: every colour occurs
  lo, hi = clean.x_train.min(axis=(0, 1, 2)), clean.x_train.max(axis=(0, 1, 2))
  assert np.all(colours >= lo - 1e-6) and np.all(colours <= hi + 1e-6)
  labels_per_colour = [len(np.unique(y[colour_of.ravel() == c])) for c in range(len(colours))]
  assert max(labels_per_colour) == noise_settings.LABELS_PER_COLOUR
  assert set(y.tolist()) == set(range(K))


def test_diverse_works_on_grey_images():
  noisy = noise_settings.apply(_clean(shape=(5, 5, 1)), 'diverse', 4.0, seed=0)
  assert len(np.unique(noisy.x_train[noisy.noisy][:, 0, 0, 0])) == noise_settings.NUM_COLOURS


def test_class_relabels_class_1_and_copies_its_first_100_images():
  n = 1500
  clean = _clean(n=n)
  noisy = noise_settings.apply(clean, 'class', 4.0, seed=0)
  source = clean.x_train[clean.y_train == noise_settings.NOISY_CLASS]
  assert len(source) > noise_settings.SOURCE_IMAGES          # the 100 cut is exercised
  x, y = noisy.x_train[noisy.noisy], noisy.y_train[noisy.noisy]
  rows = [r.tobytes() for r in x]
  assert np.isin(rows, list(_rows(source))).all()            # every noisy image is a class-1 image
  first = np.isin(rows, list(_rows(source[:noise_settings.SOURCE_IMAGES])))
  assert first.sum() == 4 * n + noise_settings.SOURCE_IMAGES  # the copies all come from the first 100
  assert _uniform(y, K)
  kept = ~noisy.noisy      # every other image keeps its label; none of them is of class 1
  assert noise_settings.NOISY_CLASS not in noisy.y_train[kept]
  assert _rows(noisy.x_train[kept]) == _rows(clean.x_train[clean.y_train != noise_settings.NOISY_CLASS])
  np.testing.assert_array_equal(noisy.y_test, clean.y_test)   # class 1 keeps its true test labels


@pytest.mark.parametrize('setting', ['blank', 'diverse', 'class'])
def test_seeded(setting):
  a, b, c = (noise_settings.apply(_clean(), setting, 1.0, seed=s) for s in (3, 3, 4))
  for field in ('x_train', 'y_train', 'noisy'):
    np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
  assert not np.array_equal(a.noisy, c.noisy)


@pytest.mark.parametrize('dataset, setting, mult, says', [
    (_clean(), 'gaussian', 1.0, "dataset.noise 'gaussian' is unknown; choose one of: blank, class"),
    (_clean(), 'blank', -1.0, 'dataset.noise_mult (-1.0) must be a finite number ≥ 0'),
    (_clean(), 'blank', float('nan'), 'dataset.noise_mult (nan) must be'),
    (_clean(task='multilabel'), 'blank', 1.0, "dataset.noise ('blank') needs a multiclass image"),
    (_clean(shape=(12,)), 'class', 1.0, "dataset.noise ('class') needs a multiclass image"),
    (_clean(num_classes=2), 'diverse', 1.0, "but dataset 'toy' has 2 classes; choose dataset.noise"),
    (_clean(num_classes=2, n=1), 'class', 1.0, "relabels class 1, which dataset 'toy'"),
])
def test_a_setting_that_does_not_fit_is_refused_by_name(dataset, setting, mult, says):
  with pytest.raises(ConfigError, match='^dataset.noise') as e:
    noise_settings.apply(dataset, setting, mult, seed=0)
  assert says in str(e.value)


def test_token_ids_are_refused():
  x = np.ones((8, 16), np.int32)
  y = np.arange(8, dtype=np.int32) % 4
  with pytest.raises(ConfigError, match=r"dataset.noise \('blank'\) needs a multiclass image"):
    noise_settings.apply(Dataset('text', x, y, x, y, num_classes=4, task='multiclass'), 'blank', 1.0, 0)


def test_the_config_fields_are_checked_up_front():
  config = tiny.get_config()
  config.dataset.noise = 'diverse'
  config.dataset.noise_mult = 4
  config_schema.check(config)
  config.dataset.noise = 'color'
  with pytest.raises(ConfigError, match="dataset.noise 'color' is unknown"):
    config_schema.check(config)
  config.dataset.noise, config.dataset.noise_mult = 'blank', -0.5
  with pytest.raises(ConfigError, match=r'dataset.noise_mult \(-0.5\) must be a finite number ≥ 0'):
    config_schema.check(config)


def test_load_from_config_applies_the_setting_to_the_pool_only():
  config = mlp_pixels.get_config().dataset   # mnist5k pixels: 4,000 pool, 1,000 test
  clean = data.load_from_config(config)
  config.noise, config.noise_mult = 'blank', 0.5
  noisy = data.load_from_config(config)
  assert len(noisy.x_train) == 6000 and noisy.noisy.sum() == 2000
  np.testing.assert_array_equal(noisy.x_test, clean.x_test)
  np.testing.assert_array_equal(noisy.y_test, clean.y_test)
  again = data.load_from_config(config)   # the same pool on every run
  np.testing.assert_array_equal(again.y_train, noisy.y_train)
  np.testing.assert_array_equal(again.noisy, noisy.noisy)


def test_no_strategy_reads_the_noisy_mark():
  al = pathlib.Path(noise_settings.__file__).parents[1] / 'al'
  readers = [p.name for p in al.rglob('*.py') if '.noisy' in p.read_text()]
  assert readers == []
