"""The peer-study losses and feedback scores against NumPy references written from their formulas."""

import itertools

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from dpal_jax.al import peer_study
from dpal_jax.psl import losses


def _softmax(z):
  e = np.exp(z - z.max(axis=-1, keepdims=True))
  return e / e.sum(axis=-1, keepdims=True)


def _kl(p, q):
  return np.sum(p * (np.log(p) - np.log(q)), axis=-1)


def _ref_in_class(zs, zt, y, alpha, tau):
  ce = -np.log(_softmax(zs)[np.arange(len(y)), y])
  kl = _kl(_softmax(zt / tau), _softmax(zs / tau))
  return np.mean((1 - alpha) * ce + alpha * tau ** 2 * kl)


def _ref_discrepancy(z):   # z [P, N, K]
  p = _softmax(z)
  return sum(_kl(p[i], p[j]) for i, j in itertools.combinations(range(len(z)), 2))


def _ref_out_of_class(z, xi):
  d = _ref_discrepancy(z)
  votes = z.argmax(-1)
  agree = (votes == votes[0]).all(0)
  terms = [max(0.0, d[c] - d[u] + xi) for c in np.flatnonzero(agree) for u in np.flatnonzero(~agree)]
  return float(np.mean(terms)) if terms else 0.0


def _ref_js(probs):   # probs [N, P, K]
  out = []
  for row in probs:
    pairs = list(itertools.combinations(range(len(row)), 2))
    js = [0.5 * _kl(row[i], (row[i] + row[j]) / 2) + 0.5 * _kl(row[j], (row[i] + row[j]) / 2)
          for i, j in pairs]
    out.append(np.mean(js))
  return np.array(out)


def _logits(seed, shape, scale=3.0):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32) * scale


# Few shapes (each new shape compiles), many values.
@given(seed=st.integers(0, 10_000), n=st.sampled_from([1, 9]), k=st.sampled_from([2, 5]),
       alpha=st.floats(0, 1), tau=st.floats(0.5, 8))
@settings(max_examples=20, deadline=None)
def test_in_class_equals_reference(seed, n, k, alpha, tau):
  zs, zt = _logits(seed, (n, k)), _logits(seed + 1, (n, k))
  y = np.random.default_rng(seed).integers(0, k, n)
  got = float(losses.in_class(jnp.asarray(zs), jnp.asarray(zt), jnp.asarray(y), alpha=alpha, tau=tau))
  np.testing.assert_allclose(got, _ref_in_class(zs.astype(np.float64), zt.astype(np.float64), y, alpha,
                                                tau), rtol=1e-4, atol=1e-5)


def test_in_class_source_values():
  assert (losses.ALPHA, losses.TAU, losses.XI) == (0.1, 4.0, 0.01)
  z = _logits(0, (5, 4))
  y = np.arange(5) % 4
  # The peer equal to its teacher pays only the CE part.
  np.testing.assert_allclose(float(losses.in_class(z, z, y)),
                             0.9 * np.mean(-np.log(_softmax(z.astype(np.float64))[np.arange(5), y])),
                             rtol=1e-5)


@given(seed=st.integers(0, 10_000), peers=st.sampled_from([2, 3]), n=st.sampled_from([1, 12]),
       k=st.sampled_from([3]), xi=st.floats(0, 0.5))
@settings(max_examples=20, deadline=None)
def test_out_of_class_equals_reference(seed, peers, n, k, xi):
  z = _logits(seed, (peers, n, k), scale=1.0)
  np.testing.assert_allclose(np.asarray(losses.discrepancy(jnp.asarray(z))),
                             _ref_discrepancy(z.astype(np.float64)), rtol=1e-4, atol=1e-5)
  np.testing.assert_array_equal(np.asarray(losses.consistent(jnp.asarray(z))),
                                (z.argmax(-1) == z.argmax(-1)[0]).all(0))
  np.testing.assert_allclose(float(losses.out_of_class(jnp.asarray(z), xi=xi)),
                             _ref_out_of_class(z.astype(np.float64), xi), rtol=1e-4, atol=1e-5)


def test_out_of_class_is_zero_without_both_sets_and_masks_padding():
  same = np.tile(_logits(3, (1, 6, 3)), (3, 1, 1))       # every peer agrees: no inconsistent example
  assert float(losses.out_of_class(jnp.asarray(same))) == 0.0
  z = _logits(4, (3, 10, 3), scale=1.0)
  mask = np.arange(10) < 7
  np.testing.assert_allclose(float(losses.out_of_class(jnp.asarray(z), mask=jnp.asarray(mask))),
                             _ref_out_of_class(z[:, :7].astype(np.float64), losses.XI), rtol=1e-4, atol=1e-6)


@given(seed=st.integers(0, 10_000), peers=st.sampled_from([2, 4]), n=st.sampled_from([1, 8]),
       k=st.sampled_from([2, 5]), scale=st.floats(0.1, 5))
@settings(max_examples=20, deadline=None)
def test_feedback_scores_equal_reference_and_js_is_bounded(seed, peers, n, k, scale):
  probs = _softmax(_logits(seed, (n, peers, k), scale=scale).astype(np.float64))
  kl = np.asarray(peer_study.summed_kl(jnp.asarray(probs, jnp.float32)))
  eps = peer_study.LOG_OFFSET   # the scores' logs are log(p + 1e-10), as in al.uncertainty
  ref_kl = np.array([sum(np.sum(row[i] * (np.log(row[i] + eps) - np.log(row[j] + eps)))
                         for i, j in itertools.combinations(range(peers), 2)) for row in probs])
  np.testing.assert_allclose(kl, ref_kl, rtol=1e-3, atol=1e-4)
  js = np.asarray(peer_study.mean_js(jnp.asarray(probs, jnp.float32)))
  np.testing.assert_allclose(js, _ref_js(np.maximum(probs, 1e-30)), rtol=1e-3, atol=1e-4)
  assert (js >= 0).all() and (js <= peer_study.JS_RANGE).all()


def test_js_reaches_log_2_for_disjoint_peers_and_needs_two():
  probs = jnp.asarray([[[1.0, 0.0], [0.0, 1.0]]])
  np.testing.assert_allclose(np.asarray(peer_study.mean_js(probs)), [np.log(2)], rtol=1e-5)
  with pytest.raises(ValueError, match='at least 2 peers'):
    peer_study.mean_js(jnp.ones((3, 1, 4)) / 4)
