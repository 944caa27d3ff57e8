"""Checks of single config values, each raising a one-line ConfigError that names the field and the fix.

A check takes the dotted config field first and returns the value it accepted, so that a caller reads
`rate = validate.number('train.learning_rate', lr, lo=0, lo_open=True)`. Numbers are judged on the
extended real line: NaN is never a number here, ±∞ only where `allow_inf` says so, and a bool (an
`int` subclass in Python) is never a number. Intervals in messages use the usual notation: (0, 1] is
0 < x ≤ 1.

Imports only the standard library and `dpal_jax.errors`, so that every layer, `privacy/` included,
may use it.
"""

import math
import numbers
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from dpal_jax.errors import ConfigError


def _fail(field: str, value: Any, requirement: str, hint: str) -> ConfigError:
  return ConfigError(f'{field} ({value!r}) must be {requirement}' + (f'; {hint}' if hint else ''))


def unknown(field: str, value: Any, choices: Iterable[str],
            error: type[Exception] = ConfigError) -> Exception:
  """The error to raise when `value` is none of `choices`: names the field and lists the choices.

  For the last branch of a dispatch on a name; `error` lets a file reader keep its own type.

  >>> unknown('privacy.mode', 'exact', ('naive', 'cohort_exact'))
  ConfigError("privacy.mode 'exact' is unknown; choose one of: cohort_exact, naive")
  """
  return error(f'{field} {value!r} is unknown; choose one of: {", ".join(sorted(choices))}')


def choice(field: str, value: Any, choices: Iterable[str]) -> str:
  """`value` if it is one of `choices` (a registry's names), else a ConfigError listing them.

  >>> choice('privacy.accountant', 'rdp', ('rdp', 'pld'))
  'rdp'
  >>> choice('privacy.accountant', 'rpd', ('rdp', 'pld'))
  Traceback (most recent call last):
  ...
  dpal_jax.errors.ConfigError: privacy.accountant 'rpd' is unknown; choose one of: pld, rdp
  """
  names = tuple(choices)
  if not isinstance(value, str) or value not in names:
    raise unknown(field, value, names)
  return value


def _bound(x: float) -> str:
  return {math.inf: '∞', -math.inf: '-∞'}.get(x) or f'{x:g}'


def _interval(lo, hi, lo_open: bool, hi_open: bool) -> str:
  """' > 0', ' ≤ 1', ' in (0, 1]' or '' (unbounded)."""
  if lo is None and hi is None:
    return ''
  if hi is None:
    return f' {">" if lo_open else "≥"} {_bound(lo)}'
  if lo is None:
    return f' {"<" if hi_open else "≤"} {_bound(hi)}'
  return f' in {"(" if lo_open else "["}{_bound(lo)}, {_bound(hi)}{")" if hi_open else "]"}'


def number(field: str, value: Any, *, lo: float | None = None, hi: float | None = None,
           lo_open: bool = False, hi_open: bool = False, allow_inf: bool = False,
           hint: str = '') -> float:
  """`value` as a float if it is a real number in the interval from `lo` to `hi`.

  Args:
    field: the dotted config field, named first in the message.
    value: the value to check; NaN and booleans are always refused.
    lo, hi: bounds (None: unbounded on that side); `lo_open` / `hi_open` exclude the bound itself.
    allow_inf: whether ±∞ is a legal value (e.g. `train.clip_norm = inf` disables clipping); even then
      it must lie inside the bounds.
    hint: the fix, appended to the message after '; '.

  >>> number('train.learning_rate', 1e-3, lo=0, lo_open=True)
  0.001
  >>> number('privacy.epsilon_al', float('inf'), lo=0, allow_inf=True)
  inf
  >>> number('privacy.epsilon_al', float('nan'), lo=0, allow_inf=True)
  Traceback (most recent call last):
  ...
  dpal_jax.errors.ConfigError: privacy.epsilon_al (nan) must be a number in [0, ∞]
  >>> number('train.learning_rate', float('nan'), lo=0, lo_open=True)
  Traceback (most recent call last):
  ...
  dpal_jax.errors.ConfigError: train.learning_rate (nan) must be a finite number > 0
  >>> number('privacy.delta', 1, lo=0, hi=1, lo_open=True, hi_open=True, hint='e.g. 1e-5')
  Traceback (most recent call last):
  ...
  dpal_jax.errors.ConfigError: privacy.delta (1) must be a finite number in (0, 1); e.g. 1e-5
  """
  if allow_inf:
    requirement = 'a number' + _interval(-math.inf if lo is None else lo, math.inf if hi is None else hi,
                                         lo_open and lo is not None, hi_open and hi is not None)
  else:
    requirement = 'a finite number' + _interval(lo, hi, lo_open, hi_open)
  if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
    raise _fail(field, value, requirement, hint)
  x = float(value)
  if (math.isinf(x) and not allow_inf
      or lo is not None and (x < lo or lo_open and x == lo)
      or hi is not None and (x > hi or hi_open and x == hi)):
    raise _fail(field, value, requirement, hint)
  return x


def integer(field: str, value: Any, *, lo: int | None = None, hi: int | None = None,
            hint: str = '') -> int:
  """`value` as an int if it is an integer (not a bool, not a float) with lo ≤ value ≤ hi.

  >>> integer('al.mc_samples', 20, lo=1)
  20
  >>> integer('seed', -1, lo=0, hint='use None for OS entropy')
  Traceback (most recent call last):
  ...
  dpal_jax.errors.ConfigError: seed (-1) must be an integer ≥ 0; use None for OS entropy
  >>> integer('train.epochs', 2.5, lo=1)
  Traceback (most recent call last):
  ...
  dpal_jax.errors.ConfigError: train.epochs (2.5) must be an integer ≥ 1
  """
  requirement = 'an integer' + _interval(lo, hi, False, False)
  if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
      or lo is not None and value < lo or hi is not None and value > hi):
    raise _fail(field, value, requirement, hint)
  return int(value)


def positive_int(field: str, value: Any, hint: str = '') -> int:
  """`value` if it is an integer ≥ 1 (sizes, counts, batch sizes).

  >>> positive_int('train.eval_batch_size', 0)
  Traceback (most recent call last):
  ...
  dpal_jax.errors.ConfigError: train.eval_batch_size (0) must be an integer ≥ 1
  """
  return integer(field, value, lo=1, hint=hint)


def boolean(field: str, value: Any) -> bool:
  """`value` if it is True or False (not 0, 1 or a string).

  >>> boolean('privacy.enabled', 'yes')
  Traceback (most recent call last):
  ...
  dpal_jax.errors.ConfigError: privacy.enabled ('yes') must be True or False
  """
  if not isinstance(value, bool):
    raise _fail(field, value, 'True or False', '')
  return value


def text(field: str, value: Any, hint: str = '') -> str:
  """`value` if it is a non-empty string.

  >>> text('dataset.data_dir', '')
  Traceback (most recent call last):
  ...
  dpal_jax.errors.ConfigError: dataset.data_dir ('') must be a non-empty string
  """
  if not isinstance(value, str) or not value:
    raise _fail(field, value, 'a non-empty string', hint)
  return value


def optional(check: Callable[..., Any], field: str, value: Any, **kwargs) -> Any:
  """None, or `value` accepted by `check(field, value, **kwargs)`.

  >>> optional(integer, 'seed', None, lo=0) is None
  True
  >>> optional(integer, 'seed', 3, lo=0)
  3
  """
  return None if value is None else check(field, value, **kwargs)


def sequence(check: Callable[..., Any], field: str, value: Any, **kwargs) -> tuple:
  """`value` as a tuple if it is a list or tuple whose every item `check` accepts (as `field[i]`).

  >>> sequence(positive_int, 'al.query_sizes', (500, 500))
  (500, 500)
  >>> sequence(positive_int, 'al.query_sizes', (500, 0))
  Traceback (most recent call last):
  ...
  dpal_jax.errors.ConfigError: al.query_sizes[1] (0) must be an integer ≥ 1
  """
  if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
    raise _fail(field, value, 'a tuple', '')
  return tuple(check(f'{field}[{i}]', item, **kwargs) for i, item in enumerate(value))


def existing_file(field: str, path: Any, hint: str = '') -> str:
  """`path` if it names an existing regular file (not a directory).

  >>> existing_file('model.checkpoint', '/')
  Traceback (most recent call last):
  ...
  dpal_jax.errors.ConfigError: model.checkpoint ('/') must be a file, not a directory
  """
  text(field, path, hint)
  if os.path.isdir(path):
    raise _fail(field, path, 'a file, not a directory', hint)
  if not os.path.isfile(path):
    raise ConfigError(f'{field}: no file at {path!r}' + (f'; {hint}' if hint else ''))
  return path
