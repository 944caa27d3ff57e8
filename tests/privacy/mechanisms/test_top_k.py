"""Clamping and the exact top-k: what every top-k mechanism ranks, for every input."""

import doctest

import hypothesis
import numpy as np
import pytest
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dpal_jax.errors import ConfigError
from dpal_jax.privacy.mechanisms import top_k

ANY_FLOAT = hnp.arrays(np.float64, st.integers(1, 40), elements=st.floats(allow_nan=True,
                                                                          allow_infinity=True))


def test_exact_top_k_is_descending_with_nan_last():
  scores = np.array([0.3, np.nan, 0.9, 0.1, 0.9])
  np.testing.assert_array_equal(top_k.exact_top_k(scores, 4), [2, 4, 0, 3])
  assert top_k.exact_top_k(scores, 0).shape == (0,)
  with pytest.raises(ConfigError, match='al.query_sizes'):
    top_k.exact_top_k(scores, 6)


def test_clamp_ties_scores_above_the_bound_and_nan_counts_as_zero():
  scores = np.array([0.5, 0.9, 1.5, np.nan, np.inf, -3.0])
  np.testing.assert_array_equal(top_k.clamp_scores(scores, 0.8), [0.5, 0.8, 0.8, 0.0, 0.8, 0.0])
  with pytest.raises(ValueError, match='clamp'):
    top_k.clamp_scores(scores, 0.0)


@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(scores=ANY_FLOAT, clamp=st.floats(1e-3, 10.0), data=st.data())
def test_clamped_scores_lie_in_range_and_the_top_k_beats_the_rest(scores, clamp, data):
  clamped = top_k.clamp_scores(scores, clamp)
  assert clamped.dtype == np.float64 and np.all((0 <= clamped) & (clamped <= clamp))
  k = data.draw(st.integers(0, len(scores)))
  chosen = top_k.exact_top_k(clamped, k)
  assert len(set(chosen.tolist())) == k
  rest = np.setdiff1d(np.arange(len(scores)), chosen)
  if k and len(rest):
    assert clamped[chosen].min() >= clamped[rest].max()
  assert np.all(np.diff(clamped[chosen]) <= 0)


def test_doctests():
  assert doctest.testmod(top_k).failed == 0
