"""Scores for private selection: their range (hence sensitivity) on extreme and neighbouring inputs, their
public thresholds, and the fidelity ceiling against the private mechanisms' measured fidelity."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from dpal_jax.al import private_scores
from dpal_jax.al import strategies
from dpal_jax.al import uncertainty
from dpal_jax.privacy import accounting
from dpal_jax.privacy.mechanisms import top_k
from dpal_jax.privacy.mechanisms.gaussian_top_k import GaussianTopK
from dpal_jax.privacy.mechanisms.laplace_top_k import LaplaceTopK

NEW = ('uncertain', 'no_majority', 'entropy_half')


def _extreme_probs(num_classes):
  """Probability rows at the ends of the simplex and around the thresholds, plus NaN and zeros."""
  k = num_classes
  rows = [np.eye(k)[0], np.full(k, 1 / k), np.r_[0.5, 0.5, np.zeros(k - 2)],
          np.r_[0.5 - 1e-7, 0.5 + 1e-7, np.zeros(k - 2)], np.r_[1 - 1e-7, 1e-7, np.zeros(k - 2)],
          np.full(k, np.nan), np.zeros(k), np.r_[0.49, np.full(k - 1, 0.51 / (k - 1))]]
  return np.asarray(rows, np.float32)


def _scores(name, probs, multilabel=False):
  strategy = strategies.get(name)
  return np.asarray(strategy.score(jnp.asarray(probs), multilabel=multilabel), np.float64)


@pytest.mark.parametrize('name', NEW)
@pytest.mark.parametrize('num_classes', [2, 10])
def test_range_on_extreme_inputs(name, num_classes):
  strategy = strategies.get(name)
  raw = _scores(name, _extreme_probs(num_classes))
  released = top_k.clamp_scores(raw, strategy.clamp)   # what the mechanism sees
  assert np.all((released >= 0) & (released <= strategy.clamp))
  if name != 'entropy_half':
    assert set(raw.tolist()) <= {0.0, 1.0}   # binary before any clamp: sensitivity 1 by construction
    assert strategy.clamp == 1.0


@pytest.mark.parametrize('name', NEW)
def test_neighbouring_pools_move_one_coordinate_by_at_most_delta(name):
  """Replacing one candidate's prediction by any other (extreme ones included) changes only its own
  released score, by at most the clamp Δ the noise is calibrated on."""
  rng = np.random.default_rng(0)
  strategy = strategies.get(name)
  pool = rng.dirichlet(np.full(10, 0.3), size=200).astype(np.float32)
  before = top_k.clamp_scores(_scores(name, pool), strategy.clamp)
  replacements = [*_extreme_probs(10), *rng.dirichlet(np.full(10, 0.1), size=20).astype(np.float32)]
  moved = 0.0
  for i, row in zip(rng.choice(200, size=len(replacements)), replacements):
    neighbour = pool.copy()
    neighbour[i] = row
    after = top_k.clamp_scores(_scores(name, neighbour), strategy.clamp)
    diff = np.abs(after - before)
    assert np.all(np.delete(diff, i) == 0)
    assert diff[i] <= strategy.clamp
    moved = max(moved, diff[i])
  assert moved == pytest.approx(strategy.clamp)   # the bound is attained: Δ is tight


def test_public_thresholds():
  flat, certain = np.full((1, 10), 0.1), np.eye(10)[:1]
  assert _scores('uncertain', flat)[0] == 1 and _scores('uncertain', certain)[0] == 0
  assert _scores('no_majority', flat)[0] == 1 and _scores('no_majority', certain)[0] == 0
  assert _scores('no_majority', np.r_[0.5, 0.5, np.zeros(8)][None])[0] == 0   # ½ is a majority
  assert _scores('entropy_half', flat)[0] == pytest.approx(1.0)   # unclamped; the clamp caps it at ½
  # uncertain is exactly entropy ≥ ½, on random predictions
  probs = np.random.default_rng(1).dirichlet(np.full(4, 0.5), size=500).astype(np.float32)
  entropy = np.asarray(uncertainty.entropy(jnp.asarray(probs)))
  np.testing.assert_array_equal(_scores('uncertain', probs), (entropy >= 0.5).astype(float))
  # multi-label: the mean binary entropy of the first 5 sigmoids; no_majority refuses
  half = np.full((1, 7), 0.5)
  assert _scores('uncertain', half, multilabel=True)[0] == 1
  assert _scores('uncertain', np.zeros((1, 7)), multilabel=True)[0] == 0
  with pytest.raises(ValueError, match='single-label'):
    _scores('no_majority', half, multilabel=True)


def test_fidelity_ceiling_formula():
  assert private_scores.fidelity_ceiling(0.0, 50, 1000) == pytest.approx(0.1)
  assert private_scores.fidelity_ceiling(math.inf, 50, 1000) == 1.0
  assert private_scores.fidelity_ceiling(1.0, 300, 500) == 1.0
  values = [private_scores.fidelity_ceiling(e, 50, 1000) for e in (0.1, 0.5, 1, 2, 4, 8)]
  assert all(a < b for a, b in zip(values, values[1:])) and values[-1] < 1
  assert private_scores.fidelity_ceiling(0.5, 50, 1000, delta=1e-3) > values[1]
  with pytest.raises(ValueError, match='0 < k <= n'):
    private_scores.fidelity_ceiling(1.0, 0, 10)


@pytest.mark.parametrize('epsilon', [0.5, 2.0])
def test_mechanisms_stay_under_the_ceiling_on_the_extreme_score(epsilon):
  """The extreme case of the ceiling: the 2k best candidates score Δ, the rest 0. Laplace (pure ε) and
  the Gaussian (its single-round ε at δ) each select no better than the ceiling allows, and both clearly
  beat random there."""
  n, k, repeats = 1000, 50, 300
  scores = np.r_[np.ones(2 * k), np.zeros(n - 2 * k)]
  rng = np.random.default_rng(2)
  delta = 1e-5
  gaussian = GaussianTopK.for_budget(4 * epsilon, 4, delta)
  gaussian_eps = accounting.epsilon([gaussian.dp_event()], delta, 'rdp')
  for mechanism, eps in ((LaplaceTopK(epsilon), epsilon), (gaussian, gaussian_eps)):
    fidelity = np.mean([strategies.selection_fidelity(scores, mechanism.top_k(scores, k, clamp=1.0,
                                                                                 rng=rng))[0]
                        for _ in range(repeats)])
    ceiling = private_scores.fidelity_ceiling(eps, k, n, delta)
    slack = 3 * 0.5 / math.sqrt(repeats * k)   # three standard errors of a mean of k·repeats picks
    assert fidelity <= ceiling + slack, (mechanism, fidelity, ceiling)
    assert fidelity > 2 * k / n + slack
