import doctest

import pytest

from dpal_jax.errors import ConfigError
from dpal_jax.privacy import accounting
from dpal_jax.privacy import calibrate


def test_pinned_noise_multipliers():
  assert calibrate.noise_multiplier(1.0, 1e-6, [(0.1, 512)]) == pytest.approx(10.364, abs=5e-4)
  assert calibrate.noise_multiplier(1.0, 1e-6, [(0.1, 512)], accountant='pld',
                                    pld_discretization=1e-4) == pytest.approx(9.662, abs=5e-4)


@pytest.mark.parametrize('accountant', ['rdp', 'pld'])
def test_sample_rate_is_the_largest_within_budget(accountant):
  history = [accounting.dpsgd_event(0.5, 4.0, 60)]
  q = calibrate.sample_rate(8.0, 1e-5, 4.0, 300, history, accountant)
  eps = lambda rate: accounting.epsilon(history + [accounting.dpsgd_event(rate, 4.0, 300)], 1e-5,
                                        accountant)
  assert eps(q) <= 8.0
  assert eps(q * 1.001) > 8.0 - 1e-3
  assert calibrate.sample_rate(8.0, 1e-5, 4.0, 300, history, accountant, guess=q * 1.3) == pytest.approx(
      q, rel=1e-4)


def test_sample_rate_edges():
  assert calibrate.sample_rate(100.0, 1e-5, 4.0, 10) == 1.0
  spent = [accounting.dpsgd_event(1.0, 0.5, 100)]
  assert calibrate.sample_rate(1.0, 1e-5, 4.0, 10, spent) == 0.0


def test_steps_are_the_most_within_budget():
  steps = calibrate.steps(2.0, 1e-6, 0.1, 3.0)
  eps = lambda s: accounting.epsilon([accounting.dpsgd_event(0.1, 3.0, s)], 1e-6)
  assert eps(steps) <= 2.0 < eps(steps + 1)
  assert calibrate.steps(2.0, 1e-6, 0.1, 3.0, accountant='pld', pld_discretization=1e-4) == 155
  assert calibrate.steps(1e-3, 1e-6, 1.0, 1.0) == 0


def test_unreachable_budget_is_a_config_error():
  with pytest.raises(ConfigError, match='privacy.epsilon'):
    calibrate.noise_multiplier(1e-6, 1e-10, [(1.0, 100000)])


def test_rescaled_rates_are_a_close_warm_start():
  """The warm start q·(σ'/σ)·√(S/S') lands near the calibrated rate at the new (S', σ')."""
  q = calibrate.sample_rate(4.0, 1e-5, 2.0, 200)
  guess, = calibrate.rescaled_rates([q], 200, 2.0, 400, 2.5)
  assert guess == pytest.approx(calibrate.sample_rate(4.0, 1e-5, 2.5, 400),
                                rel=0.15)
  assert doctest.testmod(calibrate).failed == 0
