"""The random-selection baseline loop: one DP-SGD phase on a random labeled set, under the same protocol
(ledger recomputed, SIGKILL resume gives the uninterrupted result)."""

import json
import os
import signal
import time

import dp_accounting
import numpy as np

from tests.configs import tiny
from tests.loops import runs

CONFIG = 'tests/configs/tiny_random_baseline.py'


def _summary(workdir):
  summary = json.loads(runs.read(workdir, 'summary.json'))
  summary.pop('wall_seconds')
  return summary


def test_one_phase_on_all_labels_within_budget_and_resumable(tmp_path):
  whole = str(tmp_path / 'whole')
  code, _, err = runs.run(whole, config=CONFIG)
  assert code == 0, err[-2000:]
  summary = _summary(whole)
  config = tiny.get_config()
  labels = config.al.initial_size + sum(config.al.query_sizes)
  assert [p['num_labeled'] for p in summary['phases']] == [labels]
  assert summary['strategy'] == 'random' and summary['private_selection'] is True
  ledger = json.loads(runs.read(whole, 'ledger.json'))
  assert len(ledger['phases']) == 1 and not ledger['queries']
  phase = ledger['phases'][0]
  accountant = dp_accounting.rdp.RdpAccountant()
  accountant.compose(dp_accounting.PoissonSampledDpEvent(
      phase['sample_rates'][0], dp_accounting.GaussianDpEvent(phase['noise_multiplier'])), phase['steps'])
  epsilon = accountant.get_epsilon(ledger['delta'])
  np.testing.assert_allclose(summary['epsilon_per_cohort'], [epsilon], rtol=1e-6)
  assert config.privacy.epsilon - 0.1 <= epsilon <= config.privacy.epsilon + 1e-6
  assert summary['final_test_metric'] > 0.25  # 10 classes, 2 epochs in one phase: chance is 0.1

  killed = str(tmp_path / 'killed')
  process = runs.start(killed, config=CONFIG)
  deadline = time.time() + 300  # kill while the only phase trains, before its commit
  while not os.path.exists(os.path.join(killed, 'plan.json')) and time.time() < deadline:
    time.sleep(0.01)
  time.sleep(1.0)
  process.send_signal(signal.SIGKILL)
  runs.finish(process)
  code, _, err = runs.run(killed, config=CONFIG)
  assert code == 0, err[-2000:]
  assert _summary(killed) == summary
