"""One orbax checkpoint step per stage of a loop: the train state and the run's JSON metadata together.

The checkpoint is the run's commit point and its one authority: the resolved config, the plan, the
ledger, the pool, the metrics history (and, for a seeded run only, the RNG states) are saved in the same
step as the parameters they belong to. `checkpoints/` is owner-only (it may hold RNG states and a result
that is not yet released) and is created by the first save, so a run that fails before its first commit
leaves no empty folder behind.
"""

import contextlib
import dataclasses
import errno
import logging as py_logging
import os
import re
import sys
import tempfile
from typing import Any

import jax
import orbax.checkpoint as ocp

from dpal_jax import workdir as workdir_lib
from dpal_jax.errors import CheckpointError

FOLDER = 'checkpoints'


@dataclasses.dataclass(frozen=True)
class Restored:
  stage: int
  state: Any
  meta: dict


class Checkpointer:
  """Saves and restores (train state, JSON metadata) pairs under `workdir/checkpoints`."""

  def __init__(self, workdir: str, max_to_keep: int = 2):
    self.directory = os.path.join(os.path.abspath(workdir), FOLDER)
    self._max_to_keep = max_to_keep
    self._manager = self._open() if os.path.isdir(self.directory) else None

  def _open(self) -> ocp.CheckpointManager:
    return ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=self._max_to_keep, create=True, enable_async_checkpointing=False))

  def latest_stage(self) -> int | None:
    return None if self._manager is None else self._manager.latest_step()

  def save(self, stage: int, state: Any, meta: dict) -> None:
    """Commits `stage`; raises OSError (disk full, permissions) or CheckpointError, nothing half-written."""
    if self._manager is None:
      os.makedirs(self.directory, mode=workdir_lib.SECRET_DIR_MODE, exist_ok=True)
      workdir_lib.make_secret(self.directory)
      self._manager = self._open()
    try:
      with _orbax_errors_silenced(self):
        self._manager.save(
            stage,
            args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
            force=True)
        self._manager.wait_until_finished()
    except Exception as e:  # orbax wraps OS errors in its own types; a user needs the OS reason
      code = _os_error_code(e)
      if code is not None:
        raise OSError(code, f'cannot write checkpoint {stage} in {self.directory}: '
                      f'{os.strerror(code)}') from e
      raise CheckpointError(f'cannot write checkpoint {stage} in {self.directory} '
                            f'({type(e).__name__}: {str(e)[:200]})') from e
    workdir_lib.make_secret(self.directory)

  def restore(self, fresh_state: Any) -> Restored | None:
    """The latest checkpoint, shaped like `fresh_state`; None when there is none.

    Raises CheckpointError naming the folder when the files are unreadable or do not fit the model.
    """
    stage = self.latest_stage()
    if stage is None:
      return None
    abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, fresh_state)
    where = os.path.join(self.directory, str(stage))
    try:
      restored = self._manager.restore(
          stage,
          args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
    except Exception as e:  # orbax raises many types for damaged files; all mean the same to a user
      raise CheckpointError(
          f'checkpoint {where} cannot be restored ({type(e).__name__}: {str(e)[:200]}); nothing was '
          'changed. Restore the folder from a backup or start a new run with a new --workdir') from e
    if restored.meta is None or restored.state is None:
      raise CheckpointError(f'checkpoint {where} is incomplete; nothing was changed. Restore it from a '
                            'backup or start a new run with a new --workdir')
    return Restored(stage=stage, state=restored.state, meta=dict(restored.meta))

  def close(self) -> None:
    if self._manager is not None:
      self._manager.close()
      self._manager = None


def _os_error_code(error: BaseException) -> int | None:
  """The OS error number behind `error` (an OSError in its causes, or tensorstore's os_error_code)."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(error, OSError) and error.errno is not None:
      return error.errno
    match = re.search(r"os_error_code='?(\d+)", str(error))
    if match and int(match.group(1)) in errno.errorcode:
      return int(match.group(1))
    error = error.__cause__ or error.__context__
  return None


class _DropOrbaxErrors(py_logging.Filter):
  def filter(self, record) -> bool:
    return not (record.levelno >= py_logging.ERROR and '/orbax/' in record.pathname)


@contextlib.contextmanager
def _orbax_errors_silenced(checkpointer: Checkpointer):
  """While saving, what orbax prints goes to a held file, replayed when the save succeeds. A failed save
  is reported once, as one line, by `save`: then orbax's own error logs and the tracebacks of its
  abandoned background writers ("Event loop is closed") are dropped, and the writers are let finish.
  Some of them (tensorstore callbacks, asyncio's "exception was never retrieved" at collection) still
  print later, straight to file descriptor 2 or through the stream objects they hold, so after a failed
  save descriptor 2 stays on /dev/null for the rest of the process and `sys.stderr` is given a new
  stream on the real stderr: the run's own error line (and any bug's traceback) still reaches the user."""
  absl_logger = py_logging.getLogger('absl')
  drop = _DropOrbaxErrors()
  absl_logger.addFilter(drop)
  excepthook = sys.excepthook
  sys.excepthook = _ignore_closed_event_loop(excepthook)
  sys.stderr.flush()
  saved = os.dup(2)
  held = tempfile.TemporaryFile()
  os.dup2(held.fileno(), 2)
  failed = False
  try:
    yield
  except BaseException:
    failed = True
    sys.unraisablehook = lambda unraisable: None  # the writers' coroutines, collected at exit
    with contextlib.suppress(Exception):
      checkpointer.close()  # waits for orbax's writers, whose tracebacks land in `held`
    raise
  finally:
    sys.stderr.flush()
    if failed:
      _stray_output_to_devnull(real_stderr=saved)
    else:
      os.dup2(saved, 2)
      os.close(saved)
    absl_logger.removeFilter(drop)
    if not failed:
      sys.excepthook = excepthook
      held.seek(0)
      os.write(2, held.read())
    held.close()


def _stray_output_to_devnull(real_stderr: int) -> None:
  """Descriptor 2 → /dev/null for good; `sys.stderr` → a new stream on `real_stderr` (which it owns)."""
  devnull = os.open(os.devnull, os.O_WRONLY)
  os.dup2(devnull, 2)
  os.close(devnull)
  sys.stderr = open(real_stderr, 'w', buffering=1, encoding=sys.stderr.encoding,  # pylint: disable=consider-using-with
                    errors='backslashreplace')


def _ignore_closed_event_loop(hook):
  def excepthook(kind, value, traceback):
    if not (kind is RuntimeError and str(value) == 'Event loop is closed'):
      hook(kind, value, traceback)
  return excepthook
