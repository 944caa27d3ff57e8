import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from dpal_jax.dpsgd import sampler
from dpal_jax.errors import ConfigError

DRAWS = 20_000


def test_inclusion_frequencies_and_batch_size_moments_match_the_rates():
  rates = np.repeat([0.0, 1e-3, 0.3, 1.0], 25)
  rng = np.random.default_rng(0)
  counts = np.zeros(len(rates))
  sizes = np.empty(DRAWS)
  for d in range(DRAWS):
    indices = sampler.poisson_indices(rates, rng)
    counts[indices] += 1
    sizes[d] = len(indices)
  frequency = counts / DRAWS
  stderr = np.sqrt(rates * (1 - rates) / DRAWS)
  assert np.all(np.abs(frequency - rates) <= 4 * stderr)
  assert np.all(frequency[rates == 0] == 0) and np.all(frequency[rates == 1] == 1)
  mean, var = rates.sum(), (rates * (1 - rates)).sum()
  assert abs(sizes.mean() - mean) <= 4 * np.sqrt(var / DRAWS)
  assert abs(sizes.var(ddof=1) - var) <= 4 * var * np.sqrt(2 / (DRAWS - 1))


@settings(max_examples=60, deadline=None)
@given(size=st.integers(0, 700), physical=st.sampled_from([8, 32, 100, 256]),
       expected=st.floats(1, 2000))
def test_padding_keeps_every_index_and_wastes_less_than_one_multiple(size, physical, expected):
  multiple = sampler.choose_pad_multiple(expected, physical)
  indices = np.sort(np.random.default_rng(size).choice(10_000, size, replace=False))
  batch = sampler.pad_and_chunk(indices, physical, multiple)
  flat = np.concatenate(batch.chunks)
  assert batch.size == size
  np.testing.assert_array_equal(flat[:size], indices)
  assert np.all(flat[size:] == sampler.SENTINEL)
  assert all(len(c) <= physical and len(c) % multiple == 0 for c in batch.chunks)
  assert all(len(c) == physical for c in batch.chunks[:-1])
  assert batch.padded_size - size < multiple or size == 0


@given(expected=st.floats(1, 5000), physical=st.integers(1, 512), devices=st.sampled_from([1, 2, 8]))
def test_pad_multiple_divides_the_physical_batch_and_the_device_count_divides_it(
    expected, physical, devices):
  physical *= devices
  multiple = sampler.choose_pad_multiple(expected, physical, devices)
  assert physical % multiple == 0 and multiple % devices == 0
  assert multiple <= max(devices, min(physical, expected) / sampler.MAX_CHUNK_SHAPES)


def test_poisson_batches_of_the_bench_touch_few_shapes_and_waste_little():
  rng = np.random.default_rng(1)
  draw = sampler.PoissonSampler(np.full(4096, 256 / 4096), physical_batch_size=256,
                                pad_multiple=sampler.choose_pad_multiple(256, 256), rng=rng)
  batches = [draw.draw() for _ in range(500)]
  shapes = {len(c) for b in batches for c in b.chunks}
  waste = 1 - sum(b.size for b in batches) / sum(b.padded_size for b in batches)
  assert len(shapes) <= 5 and waste < 0.1


def test_an_empty_batch_is_one_all_padding_chunk():
  batch = sampler.pad_and_chunk(np.array([], dtype=np.int64), 64, 8)
  assert batch.size == 0 and [len(c) for c in batch.chunks] == [8]
  assert np.all(batch.chunks[0] == sampler.SENTINEL)


@pytest.mark.parametrize('rates', [np.array([0.5, 1.2]), np.array([-0.1]), np.ones((2, 2))])
def test_invalid_rates_are_rejected(rates):
  with pytest.raises(ConfigError, match='sample_rates'):
    sampler.PoissonSampler(rates, physical_batch_size=8, pad_multiple=8,
                           rng=np.random.default_rng(0))


def test_a_physical_batch_not_divisible_by_the_devices_is_rejected():
  with pytest.raises(ConfigError, match='physical_batch_size'):
    sampler.choose_pad_multiple(64, 12, num_devices=8)
