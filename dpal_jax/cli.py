"""The error exit every entry point shares: `cli.run(main)` in place of `absl.app.run(main)`.

A user error ends the process with one line `error: …` on stderr and no traceback:
- exit 2: ConfigError, and a bad flag or `--config.<field>` override (an unknown field names the
  closest known one; a value that does not parse names the field and its type);
- exit 1: DataError, CheckpointError, BudgetExceededError, FloatingPointError, and OSError (permission
  denied, no space left, not a directory, …) written as 'path: reason'.
Any other exception is a bug and keeps its traceback.
"""

import functools
import os
import sys
from collections.abc import Callable
from typing import NoReturn

from absl import app
from absl import flags

from dpal_jax import errors

USAGE_EXIT = 2
FAILURE_EXIT = 1
FAILURES = (errors.DataError, errors.CheckpointError, errors.BudgetExceededError, FloatingPointError,
            OSError)
_CONFIG_PREFIXES = ('--config.', '--noconfig.')


def run(main: Callable[[list[str]], None]) -> None:
  """`app.run(main)`, with flag errors and user errors (see the module docstring) as one line."""
  app.run(_with_error_exit(main), flags_parser=_parse_flags)


def error_line(error: BaseException) -> str:
  """One line for `error`: an OSError as 'path: reason', anything else its message joined on one line."""
  if isinstance(error, OSError) and error.strerror:
    paths = ' → '.join(str(p) for p in (error.filename, error.filename2) if p is not None)
    return f'{paths}: {error.strerror}' if paths else error.strerror
  return ' '.join(line.strip() for line in str(error).splitlines() if line.strip())


def fail(message: str, code: int) -> NoReturn:
  """Prints `error: message` on stderr and exits with `code`."""
  print(f'error: {message}', file=sys.stderr)
  sys.exit(code)


def _with_error_exit(main):
  @functools.wraps(main)
  def guarded(argv):
    try:
      return main(argv)
    except errors.ConfigError as e:
      fail(error_line(e), USAGE_EXIT)
    except FAILURES as e:
      fail(error_line(e), FAILURE_EXIT)
  return guarded


def _parse_flags(argv: list[str]) -> list[str]:
  try:
    rest = flags.FLAGS(argv)
  except Exception as e:  # pylint: disable=broad-except  (ml_collections raises AttributeError, KeyError, …)
    fail(_flag_error(argv, e), USAGE_EXIT)
  if 'config' in flags.FLAGS and flags.FLAGS['config'].value is not None:
    try:
      flags.FLAGS['config'].value.keys()   # ml_collections reports a config file it failed to load only here
    except OSError as e:
      path = flags.FLAGS['config'].config_filename
      reason = 'no such file' if not os.path.exists(path) else error_line(e)
      fail(f'--config={path}: {reason}', USAGE_EXIT)
  return rest


def _flag_error(argv: list[str], error: Exception) -> str:
  """The message for a failed flag parse: an unknown override, or the field whose value did not parse."""
  config = _loaded_config(argv)
  if config is None:
    return error_line(error)
  from dpal_jax import config_schema  # pylint: disable=g-import-not-at-top  (imports jax; only on error)
  fields = config_schema.leaves(config)
  overrides = [arg.split('=', 1)[0].split('.', 1)[1] for arg in argv[1:]
               if arg.startswith(_CONFIG_PREFIXES)]
  for path in overrides:
    if path not in fields and not any(f.startswith(path + '.') for f in fields):
      return str(config_schema.unknown_field(path, fields))
  for path in overrides:
    if f'--config.{path}=' in str(error):
      parent, _, name = path.rpartition('.')
      section = functools.reduce(lambda c, key: c[key], parent.split('.'), config) if parent else config
      return f'{error_line(error)}; {path} takes a {section.get_type(name).__name__}'
  return error_line(error)


def _loaded_config(argv: list[str]):
  """The config named by --config, loaded as the flag loads it, or None without one (or if it fails)."""
  if 'config' not in flags.FLAGS:
    return None
  paths = [arg.split('=', 1)[1] for arg in argv[1:] if arg.startswith('--config=')]
  paths += [argv[i + 1] for i, arg in enumerate(argv[1:-1], 1) if arg == '--config']
  if not paths:
    return None
  try:
    config = flags.FLAGS['config'].parser.parse(paths[-1])
    config.keys()   # a config file that failed to load raises only when read
  except Exception:  # pylint: disable=broad-except  (the flag's own error is the one to report)
    return None
  return config
