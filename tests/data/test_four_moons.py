"""four_moons: a 30,000-point pool, 70 % noisy moon-0 copies with uniform labels; the clean test set."""

import numpy as np
import pytest
from scipy import stats

from configs import four_moons as four_moons_config
from dpal_jax import data
from dpal_jax.data import four_moons
from dpal_jax.errors import ConfigError


@pytest.fixture(scope='module')
def moons():
  return data.load('four_moons', test_size=None, seed=0)


def _rows(x):
  return {row.tobytes() for row in x}


def test_sizes_and_noisy_share(moons):
  assert (len(moons.x_train), len(moons.x_test)) == (30000, 12000)
  assert moons.input_shape == (2,) and moons.num_classes == 4 and moons.noisy.sum() == 21000
  np.testing.assert_array_equal(np.bincount(moons.y_test), [3000] * 4)


def test_the_clean_pool_is_moons_1_to_3_with_their_true_labels(moons):
  clean = ~moons.noisy
  np.testing.assert_array_equal(np.bincount(moons.y_train[clean], minlength=4), [0, 3000, 3000, 3000])
  test_pairs = {(r.tobytes(), int(y)) for r, y in zip(moons.x_test, moons.y_test)}
  assert all((r.tobytes(), int(y)) in test_pairs for r, y in zip(moons.x_train[clean], moons.y_train[clean]))
  assert np.all(moons.x_test[moons.y_test >= 2, 0] > 2) and np.all(moons.x_test[moons.y_test < 2, 0] < 3)


def test_the_noisy_part_is_moon_0_seven_times_with_one_uniform_label_each(moons):
  x, y = moons.x_train[moons.noisy], moons.y_train[moons.noisy]
  assert _rows(x) == _rows(moons.x_test[moons.y_test == four_moons.NOISY_MOON])
  label = {}
  for row, y_row in zip(x, y):
    assert label.setdefault(row.tobytes(), y_row) == y_row      # each copy keeps its point's label
  counts = np.bincount(list(label.values()), minlength=4)
  assert stats.chisquare(counts).pvalue > 1e-3                # uniform on the 4 classes
  assert np.all(np.unique([r.tobytes() for r in x], return_counts=True)[1] == four_moons.COPIES)


def test_the_pool_is_shuffled(moons):
  assert 0.6 < moons.noisy[:3000].mean() < 0.8


def test_seeded(moons):
  again, other = data.load('four_moons', seed=0), data.load('four_moons', seed=1)
  for field in ('x_train', 'y_train', 'noisy', 'x_test', 'y_test'):
    np.testing.assert_array_equal(getattr(again, field), getattr(moons, field))
  assert not np.array_equal(other.x_test, moons.x_test)


def test_test_size_other_than_the_clean_points_is_refused():
  with pytest.raises(ConfigError, match=r'dataset.test_size \(1000\) must be None for four_moons'):
    data.load('four_moons', test_size=1000)


def test_a_noise_setting_on_top_is_refused():
  config = four_moons_config.get_config().dataset
  config.noise = 'blank'
  with pytest.raises(ConfigError, match=r"dataset.noise \('blank'\): dataset 'four_moons' is noisy by"):
    data.load_from_config(config)


def test_the_second_pair_is_the_first_shifted_point_for_point(moons):
  first, second = moons.y_test < 2, moons.y_test >= 2   # as the paper's script: one random_state for both
  shifted = moons.x_test[first] + np.float32(four_moons.SHIFT)
  np.testing.assert_allclose(moons.x_test[second], shifted, atol=1e-6)
  np.testing.assert_array_equal(moons.y_test[second], moons.y_test[first] + 2)
