"""A restored state must fit its stage (`loops.common.check_alternating_stages`): a checkpoint whose
ledger, pool or history says otherwise is refused before anything runs or is published."""

import pytest

from dpal_jax import config_schema
from dpal_jax.errors import CheckpointError
from dpal_jax.loops import dpal
from dpal_jax.rng import RunRandomness
from tests.configs import tiny


@pytest.fixture(scope='module')
def loop_and_state():
  config = tiny.get_config()
  config.seed = 0
  config_schema.check(config)
  loop = dpal.Loop(config)
  state = loop.start(RunRandomness.create(config.seed))
  state, _ = loop.run_stage(state, 1)
  return loop, state.replace(stage=1)


def test_a_state_that_fits_its_stage_is_accepted(loop_and_state):
  loop, state = loop_and_state
  loop.check_restored(state)   # one phase in the ledger, one cohort, one history row


def test_a_stage_ahead_of_its_ledger_is_refused(loop_and_state):
  loop, state = loop_and_state
  assert loop.plan.private_queries   # stage 2 would need one paid query in the ledger
  with pytest.raises(CheckpointError, match='ledger of 1 phases and 0 queries'):
    loop.check_restored(state.replace(stage=2))


def test_a_ledger_ahead_of_its_stage_is_refused(loop_and_state):
  loop, state = loop_and_state
  with pytest.raises(CheckpointError, match='ledger of 1 phases'):
    loop.check_restored(state.replace(stage=0))


def test_a_history_that_does_not_fit_is_refused(loop_and_state):
  loop, state = loop_and_state
  with pytest.raises(CheckpointError, match='pool or history'):
    loop.check_restored(state.replace(history=state.history * 2))
  with pytest.raises(CheckpointError, match='pool or history'):
    loop.check_restored(state.replace(pool=None))


def test_a_stop_counts_as_a_stage_that_spent_nothing(loop_and_state):
  loop, state = loop_and_state
  loop.check_restored(state.replace(stage=2, stopped={'unit': 'cohort 0', 'epsilon': 9.0}))
