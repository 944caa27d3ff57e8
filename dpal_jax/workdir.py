"""The files of a run's workdir: atomic writes, owner-only secrets, and the lock that gives it one run.

Every file is written through a temporary file in the same folder and an atomic rename, so a crash never
leaves half a file. Files a user may share (summary, ledger, plan, metrics, plots, the model export) are
written 0644; what is as secret as the data (checkpoints, which may hold RNG states and results not yet
released) is kept owner-only (0700 folders, 0600 files).

`Lock` holds an OS lock (`fcntl.flock`) on `WORKDIR/.lock` for the life of a run: a second run on the same
workdir is refused with a message naming the holder (pid, host, start time), and the lock disappears with
the process that held it, even after SIGKILL.
"""

import contextlib
import datetime
import errno
import fcntl
import json
import os
import socket
import tempfile
from typing import Any

from dpal_jax.errors import CheckpointError
from dpal_jax.errors import ConfigError

LOCK_FILE = '.lock'
SHARED_MODE = 0o644
SECRET_FILE_MODE = 0o600
SECRET_DIR_MODE = 0o700


def write_bytes(path: str, data: bytes, mode: int = SHARED_MODE) -> None:
  """Writes `data` to `path` via a temporary file in the same folder and an atomic rename."""
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + os.path.basename(path), suffix='.tmp')
  try:
    with os.fdopen(fd, 'wb') as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.chmod(tmp, mode)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def write_text(path: str, text: str, mode: int = SHARED_MODE) -> None:
  write_bytes(path, text.encode(), mode)


def json_text(obj: Any) -> str:
  """The text `write_json` writes for `obj`."""
  return json.dumps(obj, indent=1, allow_nan=True) + '\n'


def write_json(path: str, obj: Any) -> None:
  write_text(path, json_text(obj))


def write_jsonl(path: str, rows: list[dict]) -> None:
  """Rewrites the whole JSON-lines file: metrics come from the checkpoint, never appended twice."""
  write_text(path, ''.join(json.dumps(row, allow_nan=True) + '\n' for row in rows))


def read_json(path: str) -> Any:
  with open(path) as f:
    return json.load(f)


def read_text(path: str) -> str:
  with open(path) as f:
    return f.read()


def read_state_file(path: str, parse=json.loads):
  """`parse` of the file's text, None when it does not exist; CheckpointError when it is damaged."""
  if not os.path.exists(path):
    return None
  try:
    return parse(read_text(path))
  except (OSError, ValueError, TypeError, KeyError, UnicodeDecodeError) as e:
    raise CheckpointError(
        f'{path} is damaged ({type(e).__name__}: {str(e)[:200]}); nothing was changed. Restore the file '
        'or start a new run with a new --workdir') from e


def make_secret(path: str) -> None:
  """Owner-only permissions for `path` and, if it is a folder, everything below it."""
  if os.path.isdir(path):
    os.chmod(path, SECRET_DIR_MODE)
    for root, dirs, files in os.walk(path):
      for name in dirs:
        os.chmod(os.path.join(root, name), SECRET_DIR_MODE)
      for name in files:
        os.chmod(os.path.join(root, name), SECRET_FILE_MODE)
  elif os.path.exists(path):
    os.chmod(path, SECRET_FILE_MODE)


def check_usable(workdir: str) -> None:
  """ConfigError when `workdir` cannot hold a run (a regular file, or a folder we cannot write)."""
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise ConfigError(f'--workdir {workdir} is a file, not a folder; name a folder (new or a run\'s)')
  parent = workdir
  while not os.path.exists(parent):
    parent = os.path.dirname(os.path.abspath(parent))
  if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
    raise ConfigError(f'--workdir {workdir}: {parent} is not writable; choose a folder you can write')


class Lock:
  """The run's hold on its workdir (see the module docstring); use as a context manager."""

  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, LOCK_FILE)
    self._fd = None

  def __enter__(self) -> 'Lock':
    os.makedirs(os.path.dirname(self.path), exist_ok=True)
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, SECRET_FILE_MODE)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      holder = _read_holder(fd)
      os.close(fd)
      if e.errno in (errno.EAGAIN, errno.EACCES):
        raise ConfigError(
            f'--workdir {os.path.dirname(self.path)} is in use by another run ({holder}); wait for it '
            'to finish or use a new --workdir') from None
      raise
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps({'pid': os.getpid(), 'host': socket.gethostname(),
                             'started': datetime.datetime.now().isoformat(timespec='seconds')}).encode())
    os.fsync(fd)
    self._fd = fd
    return self

  def __exit__(self, *exc) -> None:
    if self._fd is not None:
      with contextlib.suppress(OSError):
        os.ftruncate(self._fd, 0)
      fcntl.flock(self._fd, fcntl.LOCK_UN)
      os.close(self._fd)
      self._fd = None


def _read_holder(fd: int) -> str:
  try:
    os.lseek(fd, 0, os.SEEK_SET)
    info = json.loads(os.read(fd, 4096).decode() or '{}')
    return f'pid {info["pid"]} on {info["host"]}, started {info["started"]}'
  except (OSError, ValueError, KeyError):
    return 'holder unknown'
