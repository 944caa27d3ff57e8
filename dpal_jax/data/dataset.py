"""The in-memory dataset every loader returns: the pool (train split), the test split, the task.

Images are NHWC float32, already normalised; token ids (text datasets) are int32. Labels are int32
class ids ('multiclass') or float32 [N, K] targets in [0, 1] ('multilabel'). Validation happens once,
here, so the rest of the code can trust shapes, label ranges and finiteness. `noisy` (bool, one per
pool example, or None) marks the examples a noise setting generated or relabelled (`data.noise_settings`,
the Four Moons toy); it is for reporting only, and no strategy reads it.

Privacy units (docs/budgets.md): `groups` (str [N] or [N, M], public) names the group(s) of each pool
example, e.g. its site and modality, for per-group budgets (`privacy.group_epsilon`); `person_id`
(int64 [N]) names the person of each pool example, which makes the person the privacy unit (person-level
DP). Both None: record-level DP with one budget.
"""

import dataclasses

import numpy as np

from dpal_jax.errors import DataError

TASKS = ('multiclass', 'multilabel')


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
  """`x_train` / `y_train` are the active-learning pool; `x_test` / `y_test` the held-out split."""
  name: str
  x_train: np.ndarray
  y_train: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray
  num_classes: int
  task: str
  metric_labels: tuple | None = None  # multilabel: the label columns the test metric averages (all: None)
  noisy: np.ndarray | None = None     # bool [len(x_train)]: True where the pool example is noise
  groups: np.ndarray | None = None    # str [len(x_train)] or [len(x_train), M]: public group names
  person_id: np.ndarray | None = None # int64 [len(x_train)]: the person of each pool example

  def __post_init__(self):
    if self.task not in TASKS:
      self._fail(f'task {self.task!r} is not one of {TASKS}')
    if not isinstance(self.num_classes, (int, np.integer)) or self.num_classes < 2:
      self._fail(f'num_classes must be an integer >= 2, got {self.num_classes!r}')
    for split in ('train', 'test'):
      self._check_inputs(split, getattr(self, f'x_{split}'))
      self._check_labels(split, getattr(self, f'y_{split}'), len(getattr(self, f'x_{split}')))
    if self.x_train.shape[1:] != self.x_test.shape[1:] or self.x_train.dtype != self.x_test.dtype:
      self._fail(f'x_train {self.x_train.shape[1:]} {self.x_train.dtype} and x_test '
                 f'{self.x_test.shape[1:]} {self.x_test.dtype} differ in example shape or dtype')
    if self.noisy is not None and (not isinstance(self.noisy, np.ndarray) or self.noisy.dtype != bool
                                   or self.noisy.shape != (len(self.x_train),)):
      self._fail(f'noisy must be None or a bool array of shape [{len(self.x_train)}], got '
                 f'{_describe(self.noisy)}')
    n = len(self.x_train)
    if self.groups is not None and (not isinstance(self.groups, np.ndarray) or self.groups.ndim not in (1, 2)
                                    or len(self.groups) != n or not self.groups.size):
      self._fail(f'groups must be None or an array [{n}] or [{n}, M] of group names, got '
                 f'{_describe(self.groups)}')
    if self.person_id is not None and (not isinstance(self.person_id, np.ndarray)
                                       or not np.issubdtype(self.person_id.dtype, np.integer)
                                       or self.person_id.shape != (n,)):
      self._fail(f'person_id must be None or an integer array of shape [{n}], got '
                 f'{_describe(self.person_id)}')

  @property
  def input_shape(self) -> tuple[int, ...]:
    """The shape of one example, e.g. (32, 32, 3)."""
    return tuple(self.x_train.shape[1:])

  def __repr__(self) -> str:
    return (f'Dataset({self.name!r}, train={len(self.x_train)}, test={len(self.x_test)}, '
            f'input_shape={self.input_shape}, num_classes={self.num_classes}, task={self.task!r})')

  def _fail(self, problem: str):
    raise DataError(f'dataset {self.name!r}: {problem}')

  def _check_inputs(self, split: str, x):
    if not isinstance(x, np.ndarray) or x.ndim < 2 or len(x) == 0:
      self._fail(f'x_{split} must be a non-empty array [N, ...], got {_describe(x)}')
    if x.dtype not in (np.float32, np.int32):
      self._fail(f'x_{split} must be float32 (features) or int32 (token ids), got {x.dtype}')
    if x.dtype == np.float32 and not _all_finite(x):
      self._fail(f'x_{split} holds NaN or infinite values')

  def _check_labels(self, split: str, y, n: int):
    if not isinstance(y, np.ndarray) or len(y) != n:
      self._fail(f'y_{split} must be an array with one row per example ({n}), got {_describe(y)}')
    k = self.num_classes
    if self.task == 'multiclass':
      if y.dtype != np.int32 or y.ndim != 1:
        self._fail(f'multiclass y_{split} must be int32 of shape [N], got {_describe(y)}')
      if y.min() < 0 or y.max() >= k:
        self._fail(f'y_{split} holds labels in [{y.min()}, {y.max()}], outside [0, {k})')
    else:
      if y.dtype != np.float32 or y.shape != (n, k):
        self._fail(f'multilabel y_{split} must be float32 of shape [{n}, {k}], got {_describe(y)}')
      if not _all_finite(y) or y.min() < 0 or y.max() > 1:
        self._fail(f'multilabel y_{split} must hold targets in [0, 1]')


def _all_finite(x: np.ndarray) -> bool:
  """min/max propagate NaN and expose ±inf without allocating an [N, ...] boolean array."""
  return bool(np.isfinite(x.min()) and np.isfinite(x.max()))


def _describe(a) -> str:
  if isinstance(a, np.ndarray):
    return f'{a.dtype} array of shape {a.shape}'
  return type(a).__name__
