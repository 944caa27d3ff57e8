"""End-to-end runs of the DP-AL loop on the tiny digits config: results, ledger, resume, refusals."""

import json
import os
import signal
import subprocess
import sys
import time

import dp_accounting
import numpy as np
import pytest

from dpal_jax import errors
from dpal_jax import loops
from tests.configs import tiny

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _main(workdir, *overrides, timeout=600):
  return subprocess.Popen(
      [sys.executable, '-m', 'dpal_jax.main', '--config=tests/configs/tiny.py', f'--workdir={workdir}',
       *overrides],
      cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(process, timeout=600):
  out, err = process.communicate(timeout=timeout)
  return process.returncode, out, err


def _without_wall_time(summary):
  return {k: v for k, v in summary.items() if k != 'wall_seconds'}


@pytest.fixture(scope='module')
def finished_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('run'))
  code, out, err = _finish(_main(workdir))
  assert code == 0, err[-2000:]
  return workdir


def _recomputed_epsilons(ledger: dict) -> list[float]:
  """Every cohort's ε from the raw ledger events, with a fresh dp-accounting RDP accountant."""
  out = []
  assert ledger['schema'] == 'dpal_jax.ledger/1' and ledger['unit'] == 'cohort' and not ledger['prior']
  for cohort, labeled_at in enumerate(ledger['labeled_at']):
    if labeled_at is None:  # the never-labeled examples, not a cohort
      continue
    assert labeled_at == cohort  # cohort c is labeled before phase c
    accountant = dp_accounting.rdp.RdpAccountant()
    for phase in ledger['phases']:
      if phase['phase'] >= cohort and phase['sample_rates'][cohort] > 0:
        accountant.compose(dp_accounting.PoissonSampledDpEvent(
            phase['sample_rates'][cohort], dp_accounting.GaussianDpEvent(phase['noise_multiplier'])),
                           phase['steps'])
    for query in ledger['queries']:
      if query['after_phase'] < cohort:  # the cohort was still unlabeled when this query scored it
        assert query['mechanism'] == 'laplace'
        accountant.compose(dp_accounting.LaplaceDpEvent(1.0 / query['epsilon']))
    out.append(accountant.get_epsilon(ledger['delta']))
  return out


def test_run_writes_every_file_and_meets_its_budget(finished_run):
  for name in ('config.json', 'plan.json', 'ledger.json', 'metrics.jsonl', 'summary.json',
               'plots/test_metric.png', 'plots/epsilon_per_cohort.png'):
    assert os.path.getsize(os.path.join(finished_run, name)) > 0, name
  assert not [f for _, _, files in os.walk(finished_run) for f in files if f.endswith('.tmp')]
  with open(os.path.join(finished_run, 'summary.json')) as f:
    summary = json.load(f)
  config = tiny.get_config()
  assert summary['schema'] == 'dpal_jax.summary/1'
  assert [p['num_labeled'] for p in summary['phases']] == list(
      np.cumsum([config.al.initial_size, *config.al.query_sizes]))
  assert summary['final_test_metric'] > 0.5  # 10 classes: chance is 0.1
  assert len(summary['epsilon_per_cohort']) == 1 + len(config.al.query_sizes)
  assert max(summary['epsilon_per_cohort']) <= config.privacy.epsilon
  with open(os.path.join(finished_run, 'metrics.jsonl')) as f:
    assert [json.loads(line)['phase'] for line in f] == [0, 1, 2]


def test_ledger_recomputed_independently_matches_summary(finished_run):
  with open(os.path.join(finished_run, 'ledger.json')) as f:
    ledger = json.load(f)
  with open(os.path.join(finished_run, 'summary.json')) as f:
    summary = json.load(f)
  recomputed = _recomputed_epsilons(ledger)
  np.testing.assert_allclose(recomputed, summary['epsilon_per_cohort'], rtol=1e-6)
  assert max(recomputed) <= summary['target_epsilon'] + 1e-6
  assert min(recomputed) >= summary['target_epsilon'] - 0.1  # cohort_exact uses the budget
  assert len(ledger['phases']) == 3 and len(ledger['queries']) == 2


def test_resume_after_sigkill_gives_the_uninterrupted_result(finished_run, tmp_path):
  workdir = str(tmp_path / 'killed')
  process = _main(workdir)
  phase_one_done = os.path.join(workdir, 'checkpoints', '3')  # stage 3 = phase 1 trained
  deadline = time.time() + 600
  while not os.path.isdir(phase_one_done) and process.poll() is None and time.time() < deadline:
    time.sleep(0.02)
  process.send_signal(signal.SIGKILL)
  code, _, err = _finish(process)
  assert code == -signal.SIGKILL, f'the run ended before it could be killed: {err[-1000:]}'
  assert not os.path.exists(os.path.join(workdir, 'summary.json'))
  with open(os.path.join(phase_one_done, 'meta', 'metadata')) as f:
    assert len(json.loads(json.load(f)['ledger'])['phases']) == 2  # committed with what it paid
  with open(os.path.join(workdir, 'ledger.json')) as f:
    paid = len(json.load(f)['phases'])
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    assert paid >= len(f.read().splitlines())  # ledger.json covers every published result

  code, _, err = _finish(_main(workdir))
  assert code == 0, err[-2000:]
  assert 'Resumed' in err
  with open(os.path.join(workdir, 'summary.json')) as f:
    resumed = json.load(f)
  with open(os.path.join(finished_run, 'summary.json')) as f:
    uninterrupted = json.load(f)
  assert _without_wall_time(resumed) == _without_wall_time(uninterrupted)
  for name in ('ledger.json', 'metrics.jsonl'):
    with open(os.path.join(workdir, name)) as a, open(os.path.join(finished_run, name)) as b:
      if name == 'metrics.jsonl':
        strip = lambda text: [{k: v for k, v in json.loads(l).items() if k != 'seconds'}
                              for l in text.splitlines()]
        assert strip(a.read()) == strip(b.read())
      else:
        assert a.read() == b.read()


def test_rerunning_a_finished_run_changes_nothing(finished_run):
  with open(os.path.join(finished_run, 'ledger.json')) as f:
    before = f.read()
  summary = loops.run(tiny.get_config(), finished_run)
  with open(os.path.join(finished_run, 'ledger.json')) as f:
    assert f.read() == before
  assert len(summary['phases']) == 3


@pytest.mark.parametrize('field, value, error', [
    ('al.strategy', 'oracle', errors.ConfigError),
    ('al.strategy', 'badge', errors.ConfigError),  # no private mechanism, ε_AL is finite
    ('model.name', 'vgg99', errors.ConfigError),
    ('train.optimizer', 'adamax9', errors.ConfigError),
    ('dataset.name', 'imagenet22k', errors.ConfigError),
    ('al.query_sizes', (100, 5000), errors.ConfigError),
    ('privacy.mode', 'generous', errors.ConfigError),
])
def test_bad_config_is_refused_before_anything_is_written(tmp_path, field, value, error):
  config = tiny.get_config()
  section, name = field.split('.')
  with config.unlocked():
    config[section][name] = value
  workdir = tmp_path / 'run'
  with pytest.raises(error) as info:
    loops.run(config, str(workdir))
  assert field in str(info.value) or field.split('.')[-1] in str(info.value)
  assert not workdir.exists()


def test_missing_dataset_files_name_the_path(tmp_path):
  config = tiny.get_config()
  config.dataset.name = 'bloodmnist'
  config.dataset.data_dir = str(tmp_path / 'nothing_here')
  with pytest.raises(errors.DataError, match='nothing_here'):
    loops.run(config, str(tmp_path / 'run'))
  assert not (tmp_path / 'run').exists()


def test_resuming_with_another_config_is_refused(finished_run):
  config = tiny.get_config()
  config.train.learning_rate = 0.5
  with pytest.raises(errors.ConfigError, match='train.learning_rate'):
    loops.run(config, finished_run)


def test_corrupted_checkpoint_is_a_clear_error(tmp_path):
  workdir = tmp_path / 'run'
  config = tiny.get_config()
  config.al.query_sizes = (100,)
  config.al.labeling_budget = 400
  loops.run(config, str(workdir))
  latest = max(int(d) for d in os.listdir(workdir / 'checkpoints') if d.isdigit())
  for root, _, files in os.walk(workdir / 'checkpoints' / str(latest) / 'state'):
    for name in files:
      with open(os.path.join(root, name), 'wb') as f:
        f.write(b'\x00garbage')
  with pytest.raises(errors.CheckpointError, match=str(latest)):
    loops.run(config, str(workdir))


def test_main_reports_user_errors_in_one_line(tmp_path):
  code, out, err = _finish(_main(str(tmp_path / 'run'), '--config.al.strategy=oracle'))
  assert code == 2
  assert "error: al.strategy 'oracle' is unknown" in err
  assert 'Traceback' not in err
  assert not (tmp_path / 'run').exists()


def test_non_finite_loss_stops_the_run_with_a_message(tmp_path):
  code, _, err = _finish(_main(str(tmp_path / 'run'), '--config.train.learning_rate=1e38'))
  assert code == 1
  assert 'non-finite' in err and 'Traceback' not in err
  assert not (tmp_path / 'run' / 'summary.json').exists()


def test_multilabel_run_reports_mean_auc(tmp_path):
  config = tiny.get_config()
  config.dataset.name = 'synthetic_multilabel'
  config.dataset.test_size = 128  # of 512 examples: a pool of 384
  config.al.initial_size, config.al.query_sizes, config.al.labeling_budget = 200, (100,), 300
  summary = loops.run(config, str(tmp_path / 'run'))
  assert summary['metric'] == 'mean_auc'
  assert 0.5 < summary['final_test_metric'] <= 1.0  # learnable blobs: better than chance
  assert max(summary['epsilon_per_cohort']) <= config.privacy.epsilon


@pytest.mark.slow
def test_demo_config_reaches_its_accuracy_within_budget(tmp_path):
  """The README's demo (configs/default.py, OS-entropy noise): accuracy ≥ 0.90 at its 1,500 labels, every
  cohort's ε ≤ 8 recomputed from ledger.json (queries included)."""
  from configs import default  # pylint: disable=g-import-not-at-top
  config = default.get_config()
  summary = loops.run(config, str(tmp_path / 'demo'))
  assert summary['phases'][-1]['num_labeled'] == 1500
  assert summary['final_test_metric'] >= 0.90
  with open(tmp_path / 'demo' / 'ledger.json') as f:
    recomputed = _recomputed_epsilons(json.load(f))
  assert max(recomputed) <= config.privacy.epsilon + 1e-6
  np.testing.assert_allclose(recomputed, summary['epsilon_per_cohort'], rtol=1e-6)


def test_metrics_release_nothing_computed_from_private_data_without_noise(finished_run):
  """Training loss and realised Poisson batch sizes are not DP outputs: they must not be written."""
  with open(os.path.join(finished_run, 'metrics.jsonl')) as f:
    rows = [json.loads(line) for line in f]
  allowed = {'phase', 'num_labeled', 'steps', 'noise_multiplier', 'accuracy', 'test_metric',
             'epsilon_per_cohort', 'epsilon_spent_max', 'seconds'}
  assert all(set(row) <= allowed for row in rows), [set(row) - allowed for row in rows]
