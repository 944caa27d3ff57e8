"""Uncertainty scores against NumPy references of the original's formulas (docs/original_dpal.md §c)."""

import hypothesis
import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import jax
import numpy as np
import pytest

from dpal_jax.al import uncertainty


def _probs(n, k, seed=0, concentration=0.5):
  return np.random.default_rng(seed).dirichlet(np.full(k, concentration), size=n).astype(np.float32)


def _sigmoids(n, k, seed=0):
  p = 1 / (1 + np.exp(-np.random.default_rng(seed).normal(scale=4, size=(n, k))))
  p[:3, :2] = [[0.0, 1.0], [1.0, 1.0], [0.0, 0.0]]  # saturated outputs: the original's NaN case
  return p.astype(np.float32)


def _ref_entropy(p):
  return -np.sum(p * np.log2(p + 1e-10), -1) / np.log2(p.shape[-1])


def _ref_binary_entropy(p):
  p = p[..., :5].astype(np.float64)
  return -np.mean(p * np.log2(p + 1e-10) + (1 - p) * np.log2(1 - p + 1e-10), -1)


@pytest.mark.parametrize('k', [2, 10])
def test_entropy_single_label(k):
  p = _probs(200, k)
  np.testing.assert_allclose(uncertainty.entropy(p), _ref_entropy(p), atol=1e-5)
  assert np.isclose(uncertainty.entropy(np.full((1, k), 1 / k, np.float32))[0], 1.0, atol=1e-5)


@pytest.mark.parametrize('k', [3, 7])
def test_entropy_multilabel_is_finite_mean_binary_entropy_of_first_5(k):
  p = _sigmoids(100, k)
  scores = np.asarray(uncertainty.entropy(p, multilabel=True))
  assert np.all(np.isfinite(scores))
  np.testing.assert_allclose(scores, _ref_binary_entropy(p), atol=1e-5)


def test_least_confidence_mirrors_original():
  p = _probs(300, 4, seed=1)
  original = p.max(-1) - 1 / 4                   # ascending in the original, range [0, 1 − 1/K]
  scores = np.asarray(uncertainty.least_confidence(p))
  np.testing.assert_allclose(scores, (0.75 - original) / 0.75, atol=1e-5)
  np.testing.assert_array_equal(np.argsort(-scores, kind='stable')[:20],
                                np.argsort(original, kind='stable')[:20])


def test_least_confidence_multilabel():
  p = _sigmoids(100, 6)
  original = np.min(np.abs(p[:, :5] - 0.5), -1)  # ascending in the original, range [0, 0.5]
  np.testing.assert_allclose(uncertainty.least_confidence(p, multilabel=True),
                             (0.5 - original) / 0.5, atol=1e-6)


def test_margin():
  p = _probs(300, 5, seed=2)
  top = np.sort(p, -1)
  np.testing.assert_allclose(uncertainty.margin(p), 1 - (top[:, -1] - top[:, -2]), atol=1e-6)
  with pytest.raises(ValueError, match='single-label'):
    uncertainty.margin(p, multilabel=True)


@pytest.mark.parametrize('multilabel', [False, True])
def test_bald(multilabel):
  mc = np.stack([_sigmoids(50, 6, seed=s) if multilabel else _probs(50, 6, seed=s) for s in range(8)])
  entropy = _ref_binary_entropy if multilabel else _ref_entropy
  reference = entropy(mc.mean(0)) - np.mean([entropy(m) for m in mc], 0)
  scores = np.asarray(uncertainty.bald(mc, multilabel=multilabel))
  np.testing.assert_allclose(scores, reference, atol=1e-5)
  assert np.all(scores > -1e-5) and np.all(scores <= 1.0)
  agreeing = np.repeat(mc[:1], 8, axis=0)
  np.testing.assert_allclose(uncertainty.bald(agreeing, multilabel=multilabel), 0.0, atol=1e-5)


def test_probabilities():
  logits = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
  np.testing.assert_allclose(uncertainty.probabilities(logits, multilabel=False).sum(-1), 1, rtol=1e-6)
  np.testing.assert_allclose(uncertainty.probabilities(logits, multilabel=True), 1 / (1 + np.exp(-logits)),
                             rtol=1e-5)


@pytest.mark.parametrize('score', [uncertainty.entropy, uncertainty.least_confidence, uncertainty.margin])
def test_jitted_equals_eager(score):
  p = _probs(64, 5, seed=3)
  with jax.disable_jit():
    eager = np.asarray(score(p))
  np.testing.assert_allclose(score(p), eager, rtol=1e-6, atol=1e-7)


def test_bald_jitted_equals_eager():
  mc = np.stack([_probs(64, 5, seed=s) for s in range(4)])
  with jax.disable_jit():
    eager = np.asarray(uncertainty.bald(mc))
  np.testing.assert_allclose(uncertainty.bald(mc), eager, rtol=1e-6, atol=1e-7)


_UNIT = hnp.arrays(np.float32, (16, 6), elements=st.floats(0, 1, width=32))


@hypothesis.settings(max_examples=40, deadline=None)
@hypothesis.given(_UNIT)
def test_scores_stay_in_range_for_any_probabilities(raw):
  single = raw + 1e-6
  single = single / single.sum(-1, keepdims=True)
  for score in (uncertainty.entropy, uncertainty.least_confidence, uncertainty.margin):
    s = np.asarray(score(single))
    assert np.all(np.isfinite(s)) and np.all(s >= -1e-5) and np.all(s <= 1 + 1e-5)
  for score in (uncertainty.entropy, uncertainty.least_confidence):
    s = np.asarray(score(raw, multilabel=True))
    assert np.all(np.isfinite(s)) and np.all(s >= -1e-5) and np.all(s <= 1 + 1e-5)
