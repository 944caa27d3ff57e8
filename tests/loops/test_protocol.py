"""The run protocol with real processes: one run per workdir, the checkpoint as authority, every release
counted once, no RNG state in anything shareable, one-line errors."""

import json
import os
import re
import resource
import shutil
import signal
import time

import pytest

from tests.loops import runs

UNSEEDED = 'tests/configs/tiny_unseeded.py'


def _ledger_counts(workdir):
  ledger = json.loads(runs.read(workdir, 'ledger.json'))
  return len(ledger['phases']), len(ledger['queries'])


def _one_line_error(err):
  lines = [l for l in err.splitlines() if l.startswith('error: ')]
  assert len(lines) == 1, err[-2000:]
  assert 'Traceback' not in err and 'Event loop is closed' not in err, err[-2000:]
  return lines[0]


@pytest.fixture(scope='module')
def killed_after_phase_zero(tmp_path_factory):
  """A workdir whose run was SIGKILLed right after its first checkpoint (phase 0 trained)."""
  workdir = str(tmp_path_factory.mktemp('killed') / 'run')
  runs.kill_after_checkpoint(runs.start(workdir), workdir, stage=1)
  return workdir


def _copy(workdir, tmp_path, name):
  target = str(tmp_path / name)
  shutil.copytree(workdir, target)
  return target


def test_missing_config_json_cannot_change_the_config_on_resume(killed_after_phase_zero, tmp_path):
  workdir = _copy(killed_after_phase_zero, tmp_path, 'run')
  os.remove(os.path.join(workdir, 'config.json'))
  before = runs.read(workdir, 'ledger.json') if os.path.exists(f'{workdir}/ledger.json') else None
  code, _, err = runs.run(workdir, '--config.privacy.enabled=False')
  assert code == 2
  assert 'privacy.enabled' in _one_line_error(err)
  assert not os.path.exists(os.path.join(workdir, 'summary.json'))
  assert (runs.read(workdir, 'ledger.json') if before is not None else None) == before
  # The same config resumes (and rewrites the missing copy from the checkpoint).
  code, _, err = runs.run(workdir)
  assert code == 0, err[-2000:]
  assert json.loads(runs.read(workdir, 'config.json'))['privacy']['enabled'] is True


def test_a_second_run_on_a_busy_workdir_is_refused(tmp_path):
  workdir = str(tmp_path / 'run')
  longer = '--config.train.epochs=40'  # the first run must still train when the second starts
  first = runs.start(workdir, longer)
  plan = os.path.join(workdir, 'plan.json')  # written once the first run holds the lock
  deadline = time.time() + 300
  while not os.path.exists(plan) and time.time() < deadline:
    time.sleep(0.01)
  code, _, err = runs.run(workdir, longer)
  assert first.poll() is None, 'the first run ended before the second one tried'
  assert code == 2
  line = _one_line_error(err)
  assert 'in use by another run' in line and f'pid {first.pid}' in line
  code, _, err = runs.finish(first)
  assert code == 0, err[-2000:]
  assert _ledger_counts(workdir) == (3, 2)
  assert len(runs.written_releases(workdir)) == 3


@pytest.fixture(scope='module')
def finished(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('finished') / 'run')
  code, _, err = runs.run(workdir)
  assert code == 0, err[-2000:]
  return workdir


@pytest.mark.parametrize('damage', ['remove_checkpoints', 'remove_latest_checkpoint'])
def test_lost_checkpoints_are_refused_never_restarted(finished, tmp_path, damage):
  workdir = _copy(finished, tmp_path, 'run')
  checkpoints = os.path.join(workdir, 'checkpoints')
  if damage == 'remove_checkpoints':
    shutil.rmtree(checkpoints)
  else:
    shutil.rmtree(os.path.join(checkpoints, str(max(int(d) for d in os.listdir(checkpoints)))))
  released = {name: runs.read(workdir, name) for name in ('ledger.json', 'metrics.jsonl', 'summary.json')}
  code, _, err = runs.run(workdir)
  assert code == 1
  line = _one_line_error(err)
  assert 'new --workdir' in line
  assert {name: runs.read(workdir, name) for name in released} == released


def test_checkpoints_hold_no_noise_of_an_unseeded_run(tmp_path):
  """The shareable files (and even the owner-only checkpoint) do not determine the noise: two resumes of
  identical copies of an unseeded run release different results, and no RNG state is written."""
  workdir = str(tmp_path / 'run')
  runs.kill_after_checkpoint(runs.start(workdir, config=UNSEEDED), workdir, stage=1)
  for root, _, files in os.walk(workdir):
    for name in files:
      with open(os.path.join(root, name), 'rb') as f:
        assert b'bit_generator' not in f.read(), os.path.join(root, name)
      if os.path.basename(root) == 'meta' and name == 'metadata':
        with open(os.path.join(root, name)) as f:
          assert json.load(f)['randomness'] is None
  copies = [_copy(workdir, tmp_path, f'copy{i}') for i in range(2)]
  results = []
  for copy in copies:
    code, _, err = runs.run(copy, config=UNSEEDED)
    assert code == 0, err[-2000:]
    results.append((runs.read(copy, 'metrics.jsonl'), runs.releases(err)))
  first, second = results
  assert first[0].splitlines()[0] == second[0].splitlines()[0]  # phase 0: the committed release
  assert first[1] != second[1]  # later queries and phases drew fresh, unwritten noise
  assert first[0] != second[0]


def test_secrets_are_owner_only_and_shareable_files_readable(finished):
  checkpoints = os.path.join(finished, 'checkpoints')
  for root, dirs, files in os.walk(checkpoints):
    for name in dirs + files:
      assert os.stat(os.path.join(root, name)).st_mode & 0o077 == 0, os.path.join(root, name)
  assert os.stat(checkpoints).st_mode & 0o777 == 0o700
  for name in ('summary.json', 'ledger.json', 'plan.json', 'metrics.jsonl', 'model/params.msgpack'):
    assert os.stat(os.path.join(finished, name)).st_mode & 0o777 == 0o644, name


def test_seeded_checkpoint_holds_its_streams_only_inside_the_secret_folder(finished):
  for name in ('summary.json', 'ledger.json', 'plan.json', 'metrics.jsonl', 'config.json'):
    assert 'bit_generator' not in runs.read(finished, name)
  metas = [os.path.join(r, f) for r, _, fs in os.walk(os.path.join(finished, 'checkpoints'))
           for f in fs if os.path.basename(r) == 'meta' and f == 'metadata']
  assert metas and all('bit_generator' in open(m).read() for m in metas)


def test_log_releases_no_compile_counts_or_times(finished, tmp_path):
  code, _, err = runs.run(str(tmp_path / 'run'))
  assert code == 0
  assert not re.search(r'\d+ compiles|it/s|s/it', err), err[-2000:]
  for line in runs.read(finished, 'metrics.jsonl').splitlines():
    assert 'seconds' not in json.loads(line)


@pytest.mark.parametrize('name', ['config.json', 'plan.json'])
def test_damaged_copies_are_refused_on_resume(killed_after_phase_zero, tmp_path, name):
  workdir = _copy(killed_after_phase_zero, tmp_path, 'run')
  with open(os.path.join(workdir, name), 'w') as f:
    f.write('{"half a fi')
  code, _, err = runs.run(workdir)
  assert code == 1
  assert name in _one_line_error(err)
  assert runs.read(workdir, name) == '{"half a fi'


def test_a_checkpoint_whose_ledger_does_not_fit_its_stage_is_refused(killed_after_phase_zero, tmp_path):
  workdir = _copy(killed_after_phase_zero, tmp_path, 'run')
  meta_path = os.path.join(workdir, 'checkpoints', '1', 'meta', 'metadata')
  with open(meta_path) as f:
    meta = json.load(f)
  ledger = json.loads(meta['ledger'])
  ledger['phases'] = []
  meta['ledger'] = json.dumps(ledger)
  with open(meta_path, 'w') as f:
    json.dump(meta, f)
  code, _, err = runs.run(workdir)
  assert code == 1
  assert 'checkpoint 1' in _one_line_error(err)


def test_scrambled_checkpoint_is_one_line(killed_after_phase_zero, tmp_path):
  workdir = _copy(killed_after_phase_zero, tmp_path, 'run')
  for root, _, files in os.walk(os.path.join(workdir, 'checkpoints', '1', 'state')):
    for name in files:
      with open(os.path.join(root, name), 'wb') as f:
        f.write(b'\x00garbage')
  code, _, err = runs.run(workdir)
  assert code == 1
  assert 'checkpoint' in _one_line_error(err)


def _small_file_limit():
  signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
  resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))


def test_a_failing_disk_is_one_line_and_loses_nothing(tmp_path):
  workdir = str(tmp_path / 'run')
  code, _, err = runs.run(workdir, preexec_fn=_small_file_limit)
  assert code == 1
  assert 'cannot write checkpoint 1' in _one_line_error(err)
  assert not os.path.exists(os.path.join(workdir, 'ledger.json'))  # nothing was released
  code, _, err = runs.run(workdir)
  assert code == 0, err[-2000:]
  assert _ledger_counts(workdir) == (3, 2)


@pytest.mark.parametrize('make', ['regular_file', 'under_a_file'])
def test_unusable_workdir_is_one_line(tmp_path, make):
  path = tmp_path / 'file'
  path.write_text('not a folder')
  workdir = str(path if make == 'regular_file' else path / 'run')
  code, _, err = runs.run(workdir)
  assert code == 2
  assert '--workdir' in _one_line_error(err)


def test_a_run_that_fails_before_its_first_commit_leaves_no_checkpoints(tmp_path):
  workdir = tmp_path / 'run'
  code, _, err = runs.run(str(workdir), '--config.train.learning_rate=1e38')
  assert code == 1
  line = _one_line_error(err)
  assert 'non-finite' in line and 'loss sum' not in line
  assert not (workdir / 'checkpoints').exists() and not (workdir / 'ledger.json').exists()
  code, _, err = runs.run(str(workdir))  # the corrected config starts: nothing was spent
  assert code == 0, err[-2000:]


def test_two_restarts_in_a_row_keep_the_first_plan_as_the_authority(killed_after_phase_zero, tmp_path):
  """The plan a resumed run makes again differs in its `seconds`; the checkpoints it commits must keep
  the plan the run committed first, or the next resume would find plan.json disagreeing."""
  workdir = _copy(killed_after_phase_zero, tmp_path, 'run')
  runs.kill_after_checkpoint(runs.start(workdir), workdir, stage=3)
  code, _, err = runs.run(workdir)
  assert code == 0, err[-2000:]
  assert 'Resumed' in err
