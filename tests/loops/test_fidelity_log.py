"""`al.log_fidelity`: the query line gives the selection fidelity against its baseline, and nothing else
changes — not the picks, not the rows, not the ledger."""

import re

import numpy as np

from dpal_jax.loops import dpal
from dpal_jax.rng import RunRandomness
from tests.configs import tiny


def _first_query(log_fidelity: bool):
  config = tiny.get_config()
  config.al.log_fidelity = log_fidelity
  loop = dpal.Loop(config)
  state, release = loop.run_stage(loop.start(RunRandomness.create(0)), 2)
  return state, release


def test_the_query_line_gives_fidelity_and_baseline_only_when_asked():
  off_state, off = _first_query(False)
  on_state, on = _first_query(True)
  assert 'fidelity' not in off.log
  match = re.search(r'Selection fidelity (\d\.\d{3}) \(random (\d\.\d{3}); unnoised scores, not DP: '
                    r'al\.log_fidelity\)\.$', on.log)
  assert match, on.log
  fidelity, baseline = float(match.group(1)), float(match.group(2))
  k = tiny.get_config().al.query_sizes[0]
  n = len(off_state.pool.unlabeled()) + k
  assert 0 <= fidelity <= 1 and baseline == round(min(1.0, 2 * k / n), 3)
  # The diagnostic draws no randomness and decides nothing: same picks, same ledger, no metrics row.
  np.testing.assert_array_equal(on_state.pool.labeled, off_state.pool.labeled)
  assert on_state.ledger.to_dict() == off_state.ledger.to_dict()
  assert on.log.startswith(off.log) and on.row is None and off.row is None
