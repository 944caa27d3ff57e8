"""`select_scored` returns the picks `select` returns beside the unnoised scores; `selection_fidelity` is
the share of picks in the exact top-2k, 1 for the exact top-k and ≈ 2k/N for a uniform draw."""

import doctest

import jax
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpal_jax.al import strategies
from dpal_jax.privacy.mechanisms import top_k
from dpal_jax.privacy.mechanisms.laplace_top_k import LaplaceTopK


def _kwargs(model, params, pool, seed, mechanism):
  return dict(model=model, committee={'online': params}, x_unlabeled=pool[0], x_labeled=pool[1], k=10,
              task='multiclass', mechanism=mechanism, rng=np.random.default_rng(seed),
              key=jax.random.key(seed), batch_size=64)


@pytest.mark.parametrize('mechanism', [None, LaplaceTopK(0.5)])
def test_select_scored_is_select_beside_the_scores(mechanism, tiny, pool):
  model, params = tiny
  entropy = strategies.get('entropy')
  picks, scores = strategies.select_scored(entropy, **_kwargs(model, params, pool, 3, mechanism))
  np.testing.assert_array_equal(picks, strategies.select(entropy, **_kwargs(model, params, pool, 3,
                                                                            mechanism)))
  np.testing.assert_allclose(scores, strategies.pool_scores(
      entropy, model=model, params=params, x=pool[0], task='multiclass', key=jax.random.key(3),
      batch_size=64), rtol=1e-6)
  _, none = strategies.select_scored(strategies.get('random'), **_kwargs(model, params, pool, 3,
                                                                         mechanism))
  assert none is None


@given(st.lists(st.floats(0, 1), min_size=4, max_size=60), st.data())
def test_exact_top_k_has_fidelity_one(scores, data):
  scores = np.array(scores)
  k = data.draw(st.integers(1, len(scores) // 2))
  fidelity, baseline = strategies.selection_fidelity(scores, top_k.exact_top_k(scores, k))
  assert fidelity == 1.0 and baseline == min(1.0, 2 * k / len(scores))


def test_uniform_draws_average_the_baseline():
  rng = np.random.default_rng(0)
  scores, k = rng.random(400), 20
  draws = [strategies.selection_fidelity(scores, rng.choice(400, k, replace=False))[0]
           for _ in range(2000)]
  assert np.mean(draws) == pytest.approx(2 * k / 400, abs=0.005)


def test_bottom_k_has_fidelity_zero_and_nan_scores_rank_last():
  scores = np.array([0.5, np.nan, 0.1, 0.9, 0.3, 0.7, 0.2, 0.0])
  assert strategies.selection_fidelity(scores, np.array([1, 7])) == (0.0, 0.5)


def test_doctests():
  assert doctest.testmod(strategies).failed == 0
