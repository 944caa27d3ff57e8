"""The DP-AL loop on two real JAX processes (jax.distributed on localhost, gloo on CPU): it runs to the
end with one lock, one set of files and one selection, and resumes after one process is SIGKILLed to
the summary of an uninterrupted two-process run."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.loops import runs

ENV = dict(os.environ, JAX_PLATFORMS='cpu', XLA_FLAGS='--xla_force_host_platform_device_count=1')


def _port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def _pair(workdir):
  port = _port()
  return [subprocess.Popen(
      [sys.executable, '-m', 'dpal_jax.main', '--config=tests/configs/tiny.py', f'--workdir={workdir}',
       f'--coordinator_address=localhost:{port}', '--num_processes=2', f'--process_id={i}',
       '--compile_cache=off'],
      cwd=runs.REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
      for i in range(2)]


def _finish(pair, timeout=400):
  out = []
  for process in pair:
    try:
      out.append(runs.finish(process, timeout=timeout))
    except BaseException:
      for p in pair:
        if p.poll() is None:
          p.kill()
      raise
  return out


def _summary(workdir):
  summary = json.loads(runs.read(workdir, 'summary.json'))
  summary.pop('wall_seconds')
  return summary


@pytest.mark.slow
def test_two_processes_run_and_resume_after_one_is_killed(tmp_path):
  whole = str(tmp_path / 'whole')
  results = _finish(_pair(whole))
  assert [code for code, _, _ in results] == [0, 0], results[1][2][-3000:]
  assert runs.releases(results[0][2]) and not runs.releases(results[1][2])  # only process 0 publishes
  expected = _summary(whole)
  assert len(expected['phases']) == 3

  killed = str(tmp_path / 'killed')
  pair = _pair(killed)
  committed = os.path.join(killed, 'checkpoints', '3')
  deadline = time.time() + 400
  while not os.path.isdir(committed) and pair[1].poll() is None and time.time() < deadline:
    time.sleep(0.01)
  pair[1].send_signal(signal.SIGKILL)
  try:
    pair[0].wait(timeout=120)  # its next collective fails once the peer is gone
  except subprocess.TimeoutExpired:
    pair[0].kill()
  _finish(pair)
  assert not os.path.exists(os.path.join(killed, 'summary.json'))
  results = _finish(_pair(killed))
  assert [code for code, _, _ in results] == [0, 0], results[0][2][-3000:]
  assert 'Resumed' in results[0][2]
  assert _summary(killed) == expected
