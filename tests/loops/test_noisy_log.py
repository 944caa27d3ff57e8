"""The dpal loop's query line says how many of its picks are noisy, when the dataset marks noise."""

import re

import pytest

from dpal_jax.loops import dpal
from dpal_jax.rng import RunRandomness
from tests.configs import tiny


def _first_query(noise: str):
  config = tiny.get_config()
  config.dataset.noise, config.dataset.noise_mult = noise, 0.5
  loop = dpal.Loop(config)
  state, release = loop.run_stage(loop.start(RunRandomness.create(0)), 2)
  return loop.dataset, state.pool, release.log


@pytest.mark.parametrize('noise', ['blank', 'clean'])
def test_the_query_line_counts_the_noisy_picks(noise):
  dataset, pool, log = _first_query(noise)
  k = tiny.get_config().al.query_sizes[0]
  if dataset.noisy is None:
    assert 'noisy' not in log
    return
  picked = pool.labeled[-k:]     # labeling order: the query's picks come last
  match = re.search(r'selection [0-9a-f]+\. (\d+) of (\d+) selected are noisy\.$', log)
  assert match, log
  assert (int(match.group(1)), int(match.group(2))) == (int(dataset.noisy[picked].sum()), k)


def test_the_count_is_not_released_under_class_noise():
  """Under 'class' the mark says which pool images had label 1: not a DP output, so not logged."""
  _, _, log = _first_query('class')
  assert 'noisy' not in log
