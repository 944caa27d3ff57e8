"""The files of a run's workdir, written atomically so that a crash never leaves half a file."""

import json
import os
import tempfile
from typing import Any


def write_text(path: str, text: str) -> None:
  """Writes `text` to `path` via a temporary file in the same folder and an atomic rename."""
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=folder, prefix='.' + os.path.basename(path), suffix='.tmp')
  try:
    with os.fdopen(fd, 'w') as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise


def write_json(path: str, obj: Any) -> None:
  write_text(path, json.dumps(obj, indent=1, allow_nan=True) + '\n')


def write_jsonl(path: str, rows: list[dict]) -> None:
  """Rewrites the whole JSON-lines file: metrics come from the checkpoint, never appended twice."""
  write_text(path, ''.join(json.dumps(row, allow_nan=True) + '\n' for row in rows))


def read_json(path: str) -> Any:
  with open(path) as f:
    return json.load(f)


def read_text(path: str) -> str:
  with open(path) as f:
    return f.read()
