"""Summaries of fixed-seed runs against the ones the code wrote before the loops were split up.

The privacy fields must agree to floating-point precision (they come from the NumPy plan and ledger);
test metrics within 0.02, since XLA:CPU may round differently on another processor.
"""

import json
import os

import numpy as np
import pytest

from dpal_jax import loops
from tests.configs import tiny

GOLDEN = os.path.join(os.path.dirname(__file__), 'golden')
METRICS = ('test_metric', 'final_test_metric')


def _assert_same(summary, name):
  with open(os.path.join(GOLDEN, name)) as f:
    golden = json.load(f)
  for s in (summary, golden):
    s.pop('wall_seconds')
  assert [p['test_metric'] for p in summary['phases']] == pytest.approx(
      [p['test_metric'] for p in golden['phases']], abs=0.02)
  assert summary['final_test_metric'] == pytest.approx(golden['final_test_metric'], abs=0.02)
  strip = lambda s: {k: ([{f: v for f, v in p.items() if f not in METRICS} for p in s[k]]
                         if k == 'phases' else s[k]) for k in s if k not in METRICS}
  summary, golden = strip(summary), strip(golden)
  np.testing.assert_allclose(summary.pop('epsilon_per_cohort'), golden.pop('epsilon_per_cohort'),
                             rtol=1e-9)
  assert summary == golden


def test_tiny_summary_is_unchanged(tmp_path):
  _assert_same(loops.run(tiny.get_config(), str(tmp_path / 'run')), 'tiny_summary.json')


@pytest.mark.slow
def test_default_summary_at_seed_zero_is_unchanged(tmp_path):
  from configs import default  # pylint: disable=g-import-not-at-top
  config = default.get_config()
  config.seed = 0
  _assert_same(loops.run(config, str(tmp_path / 'run')), 'default_seed0_summary.json')
