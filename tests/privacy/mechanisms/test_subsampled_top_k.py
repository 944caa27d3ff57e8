"""Candidate subsampling: its output distribution on small cases, the fidelity model against simulation,
the budget each chosen (p, σ) spends, and a run's ledger recomputed by a fresh accountant."""

import doctest
import json

import dp_accounting
import numpy as np
import pytest

from dpal_jax import loops
from dpal_jax.al import strategies
from dpal_jax.privacy import accounting
from dpal_jax.privacy import mechanisms
from dpal_jax.privacy.mechanisms import subsampled_top_k
from dpal_jax.privacy.mechanisms.subsampled_top_k import SubsampledGaussianTopK
from tests.configs import tiny
from tests.privacy import json_events
from tests.privacy.mechanisms.conftest import assert_frequency
from tests.privacy.mechanisms.test_gaussian_top_k import _p_first_wins


@pytest.mark.parametrize('s0, s1, sigma, rate', [(1.0, 0.2, 0.5, 0.3), (0.3, 0.9, 0.8, 0.7),
                                                 (0.8, 0.0, 0.2, 0.1)])
def test_top_1_of_two_has_its_exact_probability(s0, s1, sigma, rate, rng):
  mechanism, trials = SubsampledGaussianTopK(sigma, rate), 20_000
  hits = sum(int(mechanism.top_k(np.array([s0, s1]), 1, clamp=1.0, rng=rng)[0] == 0)
             for _ in range(trials))
  assert_frequency(hits, trials, _p_first_wins(s0, s1, sigma, rate))


def test_unscored_candidates_stay_in_the_race_with_score_zero(rng):
  """A top candidate is picked only when it was scored or its noise alone wins: P = p + (1 − p)·P(noise)."""
  n, trials, rate = 3, 20_000, 0.4
  mechanism = SubsampledGaussianTopK(1e-6, rate)
  hits = sum(int(mechanism.top_k(np.array([1.0, 0.0, 0.0]), 1, clamp=1.0, rng=rng)[0] == 0)
             for _ in range(trials))
  assert_frequency(hits, trials, rate + (1 - rate) / n)


@pytest.mark.parametrize('rate, sigma, q', [(1.0, 1.0, 0.05), (0.5, 0.3, 0.05), (0.3, 0.6, 0.1)])
def test_the_fidelity_model_matches_simulation(rate, sigma, q, rng):
  n = 4000
  k = int(q * n)
  mechanism, scores = SubsampledGaussianTopK(sigma, rate), rng.random(n)
  draws = [strategies.selection_fidelity(scores, mechanism.top_k(scores, k, clamp=1.0, rng=rng))[0]
           for _ in range(40)]
  assert np.mean(draws) == pytest.approx(subsampled_top_k.expected_fidelity(rate, sigma, q), abs=0.02)


@pytest.mark.parametrize('epsilon, query_fraction', [(1.0, 0.1), (8.0, 0.01)])
def test_the_chosen_rounds_spend_the_budget_and_maximise_the_model(epsilon, query_fraction):
  rounds, delta = 4, 1 / 1500
  chosen = subsampled_top_k.choose(epsilon, rounds, delta, query_fraction=query_fraction)
  budget = subsampled_top_k.round_budget(epsilon, rounds, delta)
  spent = accounting.epsilon([chosen.dp_event()] * rounds, delta)
  assert budget - 1e-3 <= spent <= budget + 1e-9
  fidelity = lambda p: subsampled_top_k.expected_fidelity(
      p, subsampled_top_k.noise_for_rate(p, budget, rounds, delta), query_fraction)
  assert fidelity(chosen.sample_rate) >= max(fidelity(p) for p in subsampled_top_k.RATES) - 1e-12
  assert chosen.sample_rate == (1.0 if epsilon == 1.0 else 0.2)


def test_plain_data_round_trips_and_a_rate_is_required():
  mechanism = SubsampledGaussianTopK(0.65, 0.3)
  assert mechanisms.get('subsampled_gaussian') is SubsampledGaussianTopK
  assert mechanisms.from_dict(mechanisms.to_dict(mechanism)) == mechanism
  assert mechanism.dp_event() == dp_accounting.PoissonSampledDpEvent(
      0.3, dp_accounting.GaussianDpEvent(0.65))
  with pytest.raises(ValueError, match='sample_rate'):
    SubsampledGaussianTopK(1.0)


def test_a_runs_ledger_recomputed_by_a_fresh_accountant_stays_within_the_target(tmp_path, monkeypatch):
  """The tiny run with the mechanism forced to p = 0.3: every unit's ε from ledger.json alone ≤ 8."""
  monkeypatch.setattr(SubsampledGaussianTopK, 'for_budget', classmethod(
      lambda cls, e, t, d, a='rdp': subsampled_top_k.choose(e, t, d, a, rates=(0.3,))))
  config = tiny.get_config()
  config.privacy.query_mechanism = 'subsampled_gaussian'
  loops.run(config, str(tmp_path / 'run'))
  with open(tmp_path / 'run' / 'ledger.json') as f:
    data = json.load(f)
  assert {q['mechanism'] for q in data['queries']} == {'subsampled_gaussian'}
  assert {q['sample_rate'] for q in data['queries']} == {0.3}
  epsilons = [json_events.unit_epsilon(data, slot=u, labeled_at=at)
              for u, at in enumerate(data['labeled_at'])]
  assert max(epsilons) <= config.privacy.epsilon + 1e-9


def test_doctests():
  assert doctest.testmod(subsampled_top_k).failed == 0
