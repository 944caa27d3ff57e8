"""privacy.epsilon_al_split = 'auto': the planner's choice of the query budget is deterministic, among the
compared shares of privacy.epsilon_al, the one of largest proxy, and every cohort stays within the target
(recomputed from the plan's events with a fresh accountant)."""

import math

import dp_accounting
import pytest

from dpal_jax import plan as plan_cli
from dpal_jax.errors import ConfigError
from dpal_jax.privacy import accounting
from dpal_jax.privacy import events
from dpal_jax.privacy import split
from dpal_jax.privacy.plan import Plan
from dpal_jax.privacy.mechanisms.laplace_top_k import LaplaceTopK
from dpal_jax.privacy.planner import make_plan
from tests.configs import tiny


def _config(**privacy):
  config = tiny.get_config()
  config.privacy.epsilon_al_split = 'auto'
  config.privacy.epsilon_al = 3.0
  for name, value in privacy.items():
    setattr(config.privacy, name, value)
  return config


@pytest.fixture(scope='module')
def auto_plan():
  return make_plan(_config())


def _recomputed(plan: Plan, cohort: int) -> float:
  """The cohort's ε from the plan's events alone, in a fresh RDP accountant."""
  unit = events.Unit(cohort, cohort)
  history = [phase.dp_event(unit) for phase in plan.phases]
  history += [query.dp_event(unit) for query in plan.queries]
  return accounting.epsilon([e for e in history if not isinstance(e, dp_accounting.NoOpDpEvent)],
                            plan.delta, plan.accountant)


def test_choice_is_deterministic_bounded_and_the_best_proxy(auto_plan):
  again = make_plan(_config())
  first, second = auto_plan.to_dict(), again.to_dict()
  first.pop('seconds'), second.pop('seconds')
  assert first == second
  choice = auto_plan.epsilon_al_choice
  budgets = [row['epsilon_al'] for row in choice['candidates']]
  assert budgets == [f * 3.0 for f in split.FRACTIONS]
  assert choice['chosen'] in budgets and 0 < choice['chosen'] <= 3.0 < auto_plan.target_epsilon
  assert auto_plan.epsilon_al == choice['chosen']
  best = max(choice['candidates'], key=lambda row: row['proxy'])
  assert best['epsilon_al'] == choice['chosen']
  # the chosen plan is the fixed plan at the chosen budget, field for field
  fixed = make_plan(_config(epsilon_al=choice['chosen'], epsilon_al_split='fixed')).to_dict()
  chosen = auto_plan.to_dict()
  assert chosen.pop('epsilon_al_choice') == choice and 'epsilon_al_choice' not in fixed
  chosen.pop('seconds'), fixed.pop('seconds')
  assert chosen == fixed
  assert all(q.mechanism.epsilon == pytest.approx(choice['chosen'] / 2) for q in auto_plan.queries)


def test_every_cohort_within_the_target(auto_plan):
  assert not auto_plan.exceeds_target()
  for cohort in range(len(auto_plan.cohort_sizes)):
    assert _recomputed(auto_plan, cohort) <= auto_plan.target_epsilon + 1e-6
  assert auto_plan.epsilon_unlabeled <= auto_plan.target_epsilon


def test_plan_json_and_the_cli_table_show_the_choice(auto_plan):
  assert Plan.from_json(auto_plan.to_json()).epsilon_al_choice == auto_plan.epsilon_al_choice
  table = plan_cli.format_plan(auto_plan)
  assert 'epsilon_al_split auto: chose ε_AL' in table and table.count('<- chosen') == 1


def test_proxy_weighs_selection_against_training():
  sizes, queries = (100, 50, 50), 2
  def plan(eps_q, steps, sigma):
    mechanism = LaplaceTopK(eps_q)
    return Plan(mode='cohort_exact', accountant='rdp', target_epsilon=8.0, epsilon_al=eps_q * queries,
                delta=1e-5, expected_batch_size=50, cohort_sizes=sizes,
                phases=(events.DpsgdPhase(0, steps, sigma, (0.5,)),),
                queries=tuple(events.QueryRound(k, mechanism) for k in range(queries)),
                epsilon_per_cohort=(8.0,) * 3, epsilon_per_cohort_additive=(8.0,) * 3,
                epsilon_unlabeled=1.0, private_queries=True)
  low, high = split.proxy(plan(0.1, 100, 2.0)), split.proxy(plan(2.0, 100, 2.0))
  assert 1 < low['worth'] < high['worth'] < 1 + split.SELECTION_GAIN
  assert split.proxy(plan(2.0, 25, 2.0))['proxy'] == pytest.approx(high['proxy'] / 2)   # √S
  assert split.proxy(plan(2.0, 100, 4.0))['proxy'] == pytest.approx(high['proxy'] / 2)   # 1/σ


def test_auto_without_private_queries_is_the_plain_plan():
  config = _config()
  config.al.strategy = 'random'
  assert make_plan(config).epsilon_al_choice == {}
  with pytest.raises(ConfigError, match='privacy.epsilon_al_split'):
    make_plan(_config(epsilon_al_split='best'))


def test_ceiling_is_random_at_zero_and_one_at_infinity():
  assert split.fidelity_ceiling(0.0, 10, 100) == pytest.approx(0.2)
  assert split.fidelity_ceiling(math.inf, 10, 100) == 1.0
