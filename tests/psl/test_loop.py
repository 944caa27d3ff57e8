"""The psl loop: its refusals, a real run (ledger recomputed, protected rows never at the teacher) and a
resume after SIGKILL that gives the uninterrupted run's results."""

import json
import math
import os

import numpy as np
import pytest

from dpal_jax import loops
from dpal_jax.dpsgd.trainer import Trainer
from dpal_jax.errors import ConfigError
from dpal_jax.psl import loop as psl_loop
from dpal_jax.rng import RunRandomness
from tests.configs import tiny_psl
from tests.loops import runs
from tests.privacy import json_events

CONFIG = 'tests/configs/tiny_psl.py'


def _config(**changes):
  config = tiny_psl.get_config()
  for dotted, value in changes.items():
    section, field = dotted.split('.')
    config[section][field] = value
  return config


@pytest.mark.parametrize('changes, says', [
    ({'psl.protected_fraction': 0.0}, 'psl.protected_fraction is 0 with privacy.enabled'),
    ({'al.strategy': 'entropy'}, r"al.strategy \('entropy'\): the psl loop selects by peer study"),
    ({'al.strategy': 'peer_study'}, "al.strategy 'peer_study' has no private selection mechanism"),
    ({'psl.peers': 1}, 'psl.peers'),
    ({'psl.protected_fraction': 1.0}, 'psl.protected_fraction'),
])
def test_refusals_name_the_field(changes, says):
  with pytest.raises(ConfigError, match=says):
    loops.run(_config(**changes), '/nonexistent/never-written')


def test_the_source_setting_runs_without_protection_when_not_private():
  config = _config(**{'psl.protected_fraction': 0.0, 'al.strategy': 'peer_study',
                      'privacy.enabled': False, 'privacy.epsilon_al': math.inf})
  loop = psl_loop.Loop(config)
  assert len(loop.dataset.x_train) == len(loop.split.public_ids) and not len(loop.split.protected_ids)


@pytest.mark.slow
def test_run_ledger_and_protected_rows(tmp_path, monkeypatch):
  seen = []
  original = Trainer.train_phase

  def recording(self, state, x, y, **kwargs):   # the real phase, recording what the teacher is handed
    seen.append(np.asarray(x))
    return original(self, state, x, y, **kwargs)

  monkeypatch.setattr(Trainer, 'train_phase', recording)
  config = tiny_psl.get_config()
  summary = loops.run(config, str(tmp_path))
  loop = psl_loop.Loop(config)
  protected_rows = {row.tobytes() for c in loop.split.clients for row in c.protected.for_client_study()}
  public_rows = {row.tobytes() for row in loop.dataset.x_train}
  assert len(seen) == 3
  for x in seen:   # every teacher input is a public row (none that exists only among the protected)
    assert all(row.tobytes() in public_rows for row in x)
  assert not any(row.tobytes() in protected_rows - public_rows for x in seen for row in x)
  assert summary['epsilon_protected'] == math.inf and summary['num_protected'] == len(protected_rows)
  assert summary['final_peer_test_metric'] is not None
  with open(os.path.join(tmp_path, 'ledger.json')) as f:
    ledger = json.load(f)
  assert len(ledger['queries']) == 2   # each query charged to every candidate unit still unlabeled
  # Every unprotected unit's ε from ledger.json alone, by a fresh dp-accounting accountant: within ε.
  for slot, labeled_at in enumerate(ledger['labeled_at']):
    fresh = json_events.unit_epsilon(ledger, slot, labeled_at)
    assert fresh <= config.privacy.epsilon * (1 + 1e-6)
    if labeled_at is not None:
      assert fresh == pytest.approx(summary['epsilon_per_cohort'][slot], rel=1e-3)
  rows = [json.loads(line) for line in open(os.path.join(tmp_path, 'metrics.jsonl'))]
  assert [('peer_test_metric' in row) for row in rows] == [True, True, False]


@pytest.mark.slow
def test_resume_after_sigkill_gives_the_uninterrupted_results(tmp_path):
  straight = str(tmp_path / 'straight')
  code, _, err = runs.run(straight, config=CONFIG)
  assert code == 0, err[-2000:]
  killed = str(tmp_path / 'killed')
  runs.kill_after_checkpoint(runs.start(killed, config=CONFIG), killed, stage=2)
  code, _, err = runs.run(killed, config=CONFIG)
  assert code == 0, err[-2000:]
  assert 'Resumed' in err

  def results(workdir):
    summary = json.loads(runs.read(workdir, 'summary.json'))
    return {k: v for k, v in summary.items() if k != 'wall_seconds'}, runs.read(workdir, 'ledger.json'), \
        runs.read(workdir, 'metrics.jsonl')

  assert results(killed) == results(straight)


@pytest.mark.parametrize('private', [True, False], ids=['private', 'source'])
def test_each_client_studies_only_its_own_data(private):
  """What a client's peers read: its own rows only (clients never mixed); under privacy its protected rows
  only, with the teacher's predictions as labels; in the source setting its labeled rows in class."""
  changes = {} if private else {'al.strategy': 'peer_study', 'privacy.enabled': False,
                                'privacy.epsilon_al': math.inf}
  loop = psl_loop.Loop(_config(**changes))
  state = loop.start(RunRandomness.create(0))
  x = loop.dataset.x_train
  own = {c.index: {r.tobytes() for r in np.concatenate([x[c.public], c.protected.for_client_study()])}
         for c in loop.split.clients}
  labeled = {r.tobytes() for r in x[state.pool.labeled]}
  for client in loop.split.clients:
    data = loop.client_data(client, state.train.teacher.params, state.pool)
    rows_in = {r.tobytes() for r in data['x_in']}
    rows_out = {r.tobytes() for r in data['x_out']}
    others = set().union(*(rows for c, rows in own.items() if c != client.index)) - own[client.index]
    assert (rows_in | rows_out) <= own[client.index] and not (rows_in | rows_out) & others
    protected_rows = {r.tobytes() for r in client.protected.for_client_study()}
    if private:
      assert rows_in == rows_out == protected_rows and not rows_in & labeled
      np.testing.assert_array_equal(data['y_in'], data['teacher_in'].argmax(-1))
    else:
      assert rows_in <= labeled and protected_rows <= rows_out and not rows_out & labeled
