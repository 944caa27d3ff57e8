"""Real `python -m dpal_jax.main` processes on the tiny config, for the lifecycle tests."""

import json
import os
import re
import signal
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RELEASE_LINE = re.compile(r'(Phase \d+): .*test \w+ ([0-9.]+)|(Query \d+): .*selection ([0-9a-f]+)')


def start(workdir, *overrides, config='tests/configs/tiny.py', preexec_fn=None) -> subprocess.Popen:
  return subprocess.Popen(
      [sys.executable, '-m', 'dpal_jax.main', f'--config={config}', f'--workdir={workdir}', *overrides],
      cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=preexec_fn)


def finish(process, timeout=600):
  out, err = process.communicate(timeout=timeout)
  return process.returncode, out, err


def run(workdir, *overrides, **kwargs):
  return finish(start(workdir, *overrides, **kwargs))


def kill_after_checkpoint(process, workdir, stage: int, timeout=600) -> str:
  """SIGKILLs `process` as soon as checkpoint `stage` is committed; returns its stderr."""
  committed = os.path.join(workdir, 'checkpoints', str(stage))
  deadline = time.time() + timeout
  while not os.path.isdir(committed) and process.poll() is None and time.time() < deadline:
    time.sleep(0.01)
  process.send_signal(signal.SIGKILL)
  code, _, err = finish(process)
  assert code == -signal.SIGKILL, f'the run ended before it could be killed: {err[-1500:]}'
  return err


def releases(text: str) -> set[tuple[str, str]]:
  """(stage name, released value) pairs printed in a log."""
  out = set()
  for match in RELEASE_LINE.finditer(text):
    name, value = (match.group(1), match.group(2)) if match.group(1) else (match.group(3), match.group(4))
    out.add((name, value))
  return out


def written_releases(workdir) -> set[tuple[str, str]]:
  """(stage name, value) pairs in the workdir's metrics.jsonl."""
  path = os.path.join(workdir, 'metrics.jsonl')
  if not os.path.exists(path):
    return set()
  with open(path) as f:
    return {(f'Phase {row["phase"]}', f'{row["test_metric"]:.4f}') for row in map(json.loads, f)}


def read(workdir, name):
  with open(os.path.join(workdir, name)) as f:
    return f.read()
