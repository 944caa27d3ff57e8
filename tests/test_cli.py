"""The shared error exit, through real entry-point processes: exit code, one line, no traceback."""

import errno
import os
import subprocess
import sys

import pytest

from dpal_jax import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(module, *args):
  return subprocess.run([sys.executable, '-m', f'dpal_jax.{module}', *args], cwd=REPO,
                        capture_output=True, text=True, timeout=600)


def _one_error_line(result) -> str:
  assert 'Traceback' not in result.stderr, result.stderr[-3000:]
  lines = result.stderr.splitlines()
  assert len(lines) == 1 and lines[0].startswith('error: '), result.stderr[-3000:]
  return lines[0]


# (override, text the one line must hold): each refused before anything is written (issue 17).
MAIN_REFUSALS = [
    ('--config.privacy.epsilon_al=nan', 'privacy.epsilon_al (nan)'),
    ('--config.privacy.epsilon=nan', 'privacy.epsilon (nan)'),
    ('--config.privacy.delta=nan', 'privacy.delta (nan)'),
    ('--config.train.epochs=nan', "train.epochs ('nan')"),
    ('--config.seed=-1', 'seed (-1) must be an integer ≥ 0'),
    ('--config.train.learning_rate=nan', 'train.learning_rate (nan)'),
    ('--config.train.learning_rate=-1', 'train.learning_rate (-1.0)'),
    ('--config.train.learning_rate=inf', 'train.learning_rate (inf)'),
    ('--config.train.eval_batch_size=0', 'train.eval_batch_size (0)'),
    ('--config.al.query_batch_size=0', 'al.query_batch_size (0)'),
    ('--config.al.mc_samples=0', 'al.mc_samples (0)'),
    ('--config.dataset.image_size=64', "dataset.image_size (64) is not an option of dataset.name 'digits'"),
    ('--config.model.checkpoint=tests', "model.name 'mlp' starts from no checkpoint"),
    ('--config.privacy.epsilonn=3', 'privacy.epsilonn is not a config field; did you mean privacy.epsilon?'),
    ('--config.trian.epochs=3', 'trian.epochs is not a config field; did you mean train.epochs?'),
    ('--config.privacy.epsilon=abc', "--config.privacy.epsilon=abc: could not convert string to float"),
]


@pytest.mark.parametrize('override, says', MAIN_REFUSALS)
def test_main_refuses_a_bad_config_with_one_line_and_exit_2(override, says, tmp_path):
  workdir = tmp_path / 'run'
  result = _run('main', '--config=tests/configs/tiny.py', f'--workdir={workdir}', override)
  assert result.returncode == 2, result.stderr[-3000:]
  assert says in _one_error_line(result)
  assert result.stdout == '' and not workdir.exists()


def test_main_refuses_a_checkpoint_directory_or_missing_file(tmp_path):
  workdir = tmp_path / 'run'
  nfnet = ('--config=tests/configs/tiny.py', f'--workdir={workdir}', '--config.model.name=nfnet_f0')
  for path, says in [(tmp_path, 'must be a file, not a directory'), (tmp_path / 'F0.npz', 'no file at')]:
    result = _run('main', *nfnet, f'--config.model.checkpoint={path}')
    assert result.returncode == 2 and 'model.checkpoint' in _one_error_line(result)
    assert says in result.stderr and not workdir.exists()


def test_main_missing_data_is_exit_1(tmp_path):
  workdir = tmp_path / 'run'
  result = _run('main', '--config=tests/configs/tiny.py', f'--workdir={workdir}',
                '--config.dataset.name=bloodmnist', f'--config.dataset.data_dir={tmp_path}')
  assert result.returncode == 1
  assert 'bloodmnist.npz' in _one_error_line(result) and not workdir.exists()


def test_main_os_error_names_the_path_and_the_reason():
  result = _run('main', '--config=tests/configs/tiny.py', '--workdir=/proc/dpal_jax_test_run')
  # root reaches mkdir (OSError, exit 1); another user is refused earlier as a non-writable folder.
  assert result.returncode in (1, 2)
  assert _one_error_line(result).startswith('error: /proc/dpal_jax_test_run')


@pytest.mark.slow
def test_main_divergence_is_exit_1_with_one_error_line(tmp_path):
  result = _run('main', '--config=tests/configs/tiny.py', f'--workdir={tmp_path / "run"}',
                '--config.train.learning_rate=1e30')
  assert result.returncode == 1 and 'Traceback' not in result.stderr
  errors = [line for line in result.stderr.replace('\r', '\n').splitlines() if 'error: ' in line]
  assert len(errors) == 1 and 'non-finite loss' in errors[0] and result.stdout == ''


@pytest.mark.parametrize('args, code, says', [
    (('--config=configs/default.py', '--config.seed=-1'), 2, 'seed (-1)'),
    (('--config=configs/default.py', '--config.al.strategyy=random'),
     2, 'al.strategyy is not a config field; did you mean al.strategy?'),
    (('--config=configs/nope.py',), 2, '--config=configs/nope.py: no such file'),
    (('--config=configs/default.py', '--jsn'), 2, "Unknown command line flag 'jsn'"),
])
def test_plan_errors(args, code, says):
  result = _run('plan', *args)
  assert result.returncode == code and says in _one_error_line(result)


def test_bench_unknown_override_names_its_closest_field():
  result = _run('bench', '--config=configs/bench/mlp.py', '--config.bench.stepz=1')
  assert result.returncode == 2
  assert 'bench.stepz is not a config field; did you mean bench.steps?' in _one_error_line(result)


def test_weights_os_error_is_exit_1(tmp_path):
  result = _run('weights', 'inspect', str(tmp_path))
  assert result.returncode == 1 and _one_error_line(result) == f'error: {tmp_path}: Is a directory'


def test_error_line_of_real_os_errors(tmp_path):
  with pytest.raises(OSError) as e:
    open(tmp_path / 'missing' / 'x.json', encoding='utf-8')
  assert cli.error_line(e.value) == f'{tmp_path}/missing/x.json: No such file or directory'
  (tmp_path / 'a').write_text('x')
  with pytest.raises(OSError) as e:
    os.rename(tmp_path / 'a', tmp_path / 'a' / 'b')
  assert cli.error_line(e.value) == f'{tmp_path}/a → {tmp_path}/a/b: Not a directory'
  assert cli.error_line(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))) == 'No space left on device'
  assert cli.error_line(ValueError('two\n  lines')) == 'two lines'
