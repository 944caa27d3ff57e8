"""Helpers of the mechanism tests: sample moments against their exact values, pick frequencies."""

import numpy as np
import pytest


def assert_mean_within(samples: np.ndarray, expected: float, sigmas: float = 4.0):
  """The sample mean is within `sigmas` standard errors of `expected`."""
  se = samples.std() / np.sqrt(len(samples))
  assert abs(samples.mean() - expected) < sigmas * se, (samples.mean(), expected, se)


def assert_frequency(hits: int, trials: int, p: float, sigmas: float = 4.5):
  """`hits` of `trials` Bernoulli(p) draws: within `sigmas` binomial standard deviations."""
  sd = np.sqrt(trials * p * (1 - p))
  assert abs(hits - trials * p) <= sigmas * sd + 1e-9, (hits / trials, p)


@pytest.fixture
def rng():
  return np.random.default_rng(20261201)
