"""A votes file: an .npy int array [queries, classes] of teacher vote counts, loaded and checked.

Row i holds, per class, how many teachers voted for it on query i; every row sums to the number of
teachers. The file is read with `allow_pickle=False` (a pickle can run code), and anything else (an
.npz archive, a float or object array, a negative count, rows with different totals, not 2-D) is refused
with one ConfigError naming `--votes` and the fix.
"""

import os
import zipfile

import numpy as np

from dpal_jax.errors import ConfigError

FIELD = '--votes'
_MAGIC = b'\x93NUMPY'   # the first bytes of every .npy file


def _refuse(path, problem: str, fix: str) -> ConfigError:
  return ConfigError(f'{FIELD}={path}: {problem}; {fix}')


def load(path: str) -> np.ndarray:
  """The vote counts in `path` as int64 [queries, classes], after the checks of the module docstring.

  Raises:
    ConfigError: the file is missing, unreadable or not a valid votes matrix (the message says why).
  """
  fix = 'save the counts with np.save(path, votes) where votes is an int array [queries, classes]'
  if not os.path.isfile(path):
    raise _refuse(path, 'no such file', 'pass the .npy file of vote counts')
  if zipfile.is_zipfile(path):
    raise _refuse(path, 'an .npz archive, not one array', fix)
  with open(path, 'rb') as f:
    head = f.read(len(_MAGIC))
  if head != _MAGIC:
    reason = ('holds pickled data (refused: loading a pickle can run code)' if head[:1] == b'\x80'
              else 'is not a NumPy .npy file')
    raise _refuse(path, reason, fix)
  try:
    votes = np.load(path, allow_pickle=False)
  except ValueError:   # an object array: stored as a pickle inside the .npy
    raise _refuse(path, 'holds pickled data or objects (refused: loading a pickle can run code)',
                  fix) from None
  except (OSError, EOFError) as e:
    raise _refuse(path, f'cannot be read ({e})', fix) from None
  return check(votes, path)


def check(votes: np.ndarray, path: str = '<array>') -> np.ndarray:
  """`votes` as int64 if it is a valid votes matrix (see the module docstring), else a ConfigError."""
  fix = 'save the counts with np.save(path, votes) where votes is an int array [queries, classes]'
  if votes.dtype == bool or not np.issubdtype(votes.dtype, np.integer):
    raise _refuse(path, f'dtype {votes.dtype} is not an integer type', 'vote counts are whole numbers: '
                  'save votes.astype(np.int64)')
  if votes.ndim != 2:
    raise _refuse(path, f'shape {votes.shape} is not 2-D', fix)
  if votes.shape[0] < 1 or votes.shape[1] < 2:
    raise _refuse(path, f'shape {votes.shape} needs at least one query and two classes', fix)
  negative = np.argwhere(votes < 0)
  if len(negative):
    row, column = negative[0]
    raise _refuse(path, f'row {row} has a negative count ({votes[row, column]}) for class {column}',
                  'counts are numbers of teachers, ≥ 0')
  totals = votes.sum(axis=1)
  if totals[0] <= 0:
    raise _refuse(path, 'row 0 has no votes', 'every row counts the votes of all teachers')
  different = np.flatnonzero(totals != totals[0])
  if len(different):
    row = different[0]
    raise _refuse(path, f'row {row} sums to {totals[row]} votes, row 0 to {totals[0]}',
                  'every row counts the votes of the same teachers (one vote each)')
  return votes.astype(np.int64)
