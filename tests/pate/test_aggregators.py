"""The aggregators' output distributions against their exact laws, and the events they charge."""

import jax
import ml_collections
import numpy as np
import pytest
from scipy import integrate
from scipy import stats

from dpal_jax.errors import ConfigError
from dpal_jax.pate import aggregators

N = 200_000   # draws per distribution test


def _exact_argmax(votes, dist) -> np.ndarray:
  """P[argmax_j (votes_j + noise_j) = j] for i.i.d. noise of law `dist`, by numerical integration."""
  def density(t, j):
    out = dist.pdf(t - votes[j])
    for i, v in enumerate(votes):
      if i != j:
        out *= dist.cdf(t - v)
    return out
  lo, hi = min(votes) - 60 * dist.std(), max(votes) + 60 * dist.std()
  return np.array([integrate.quad(density, lo, hi, args=(j,), points=list(votes), limit=400)[0]
                   for j in range(len(votes))])


def _close(freq, exact, n=N):
  """Every frequency within 5 standard errors of its probability."""
  se = np.sqrt(exact * (1 - exact) / n) + 1e-12
  assert np.all(np.abs(freq - exact) <= 5 * se + 1e-4), (freq, exact)


def _frequencies(labels, classes):
  return np.bincount(np.asarray(labels), minlength=classes) / len(labels)


@pytest.mark.parametrize('votes, scale', [([3, 2, 0], 1.5), ([5, 5, 1, 0], 2.0), ([10, 0], 4.0)])
def test_lnmax_matches_its_exact_probabilities(votes, scale):
  batch = np.tile(np.asarray(votes, np.float32), (N, 1))
  labels = aggregators.lnmax(batch, jax.random.key(len(votes)), np.float32(scale))
  exact = _exact_argmax(votes, stats.laplace(scale=scale))
  assert abs(exact.sum() - 1) < 1e-6
  _close(_frequencies(labels, len(votes)), exact)


@pytest.mark.parametrize('votes, sigma', [([30, 25, 5], 4.0), ([20, 20, 20], 3.0)])
def test_gnmax_frequencies_match_the_gaussian_law(votes, sigma):
  batch = np.tile(np.asarray(votes, np.float32), (N, 1))
  labels = aggregators.gnmax(batch, jax.random.key(7), np.float32(sigma))
  _close(_frequencies(labels, len(votes)), _exact_argmax(votes, stats.norm(scale=sigma)))


@pytest.mark.parametrize('top, threshold, sigma1', [(40, 45, 5.0), (40, 30, 8.0), (12, 12, 3.0)])
def test_confident_gnmax_abstains_at_the_rate_its_threshold_implies(top, threshold, sigma1):
  hist = [top, top // 2, 0]
  votes = np.tile(np.array(hist, np.float32), (N, 1))
  labels, answered = aggregators.confident_gnmax(votes, jax.random.key(3), np.float32(threshold),
                                                 np.float32(sigma1), np.float32(2.0))
  p = stats.norm.sf((threshold - top) / sigma1)
  _close(np.array([np.mean(answered)]), np.array([p]))
  # Answers follow GNMax with σ₂ whatever the test decided (the two noises are independent).
  _close(_frequencies(np.asarray(labels)[np.asarray(answered)], 3),
         _exact_argmax(hist, stats.norm(scale=2.0)), n=int(np.sum(answered)))


@pytest.mark.parametrize('probs, confidence', [([0.9, 0.05, 0.05], 0.8), ([0.5, 0.3, 0.2], 0.8)])
def test_interactive_gnmax_asks_trusts_or_abstains_at_the_rates_of_algorithm_2(probs, confidence):
  votes = np.tile(np.array([30, 15, 5], np.float32), (N, 1))
  student = np.tile(np.asarray(probs, np.float32), (N, 1))
  weight, threshold, sigma1 = 20.0, 25.0, 6.0
  labels, source = aggregators.interactive_gnmax(
      votes, student, jax.random.key(5), np.float32(threshold), np.float32(sigma1), np.float32(3.0),
      np.float32(weight), np.float32(confidence))
  source = np.asarray(source)
  ask = stats.norm.sf((threshold - np.max(votes[0] - weight * student[0])) / sigma1)
  trust = (1 - ask) * (max(probs) > confidence)
  _close(np.bincount(source, minlength=3) / N, np.array([1 - ask - trust, ask, trust]))
  assert np.all(np.asarray(labels)[source == aggregators.STUDENT] == int(np.argmax(probs)))


def _config(**fields):
  pate = ml_collections.ConfigDict(dict(aggregator='confident_gnmax', laplace_scale=None, sigma1=150.0,
                                        sigma2=40.0, threshold=200.0, student_weight=0.0,
                                        student_confidence=1.0))
  pate.update(fields)
  return pate


def test_the_event_charges_what_the_round_did():
  confident = aggregators.from_config(_config())
  event = confident.event(3, tested=100, answered=40)
  assert (event.round, event.tested, event.answered, event.sigma1, event.sigma2) == (3, 100, 40, 150, 40)
  worst = confident.worst_case(3, 100)
  assert (worst.tested, worst.answered) == (100, 100)
  lnmax = aggregators.from_config(_config(aggregator='lnmax', laplace_scale=20.0))
  event = lnmax.event(1, tested=50, answered=50)
  assert (event.tested, event.answered, event.laplace_scale, event.sigma2) == (0, 50, 20.0, None)


def test_answer_counts_only_teacher_answers():
  agg = aggregators.from_config(_config(threshold=50.0, sigma1=1e-3, sigma2=1e-3))
  answers = agg.answer(np.array([[100, 0], [30, 20], [0, 60]]), jax.random.key(0))
  assert answers.source.tolist() == [1, 0, 1] and answers.answered == 2
  assert answers.labels[[0, 2]].tolist() == [0, 1]


def test_a_missing_parameter_is_refused_by_name():
  with pytest.raises(ConfigError, match='pate.laplace_scale'):
    aggregators.from_config(_config(aggregator='lnmax'))
  with pytest.raises(ConfigError, match='pate.aggregator'):
    aggregators.from_config(_config(aggregator='max'))
