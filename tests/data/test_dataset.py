"""Dataset validation: every malformed field ends in one DataError naming the dataset and the cause."""

import numpy as np
import pytest

from dpal_jax.data.dataset import Dataset
from dpal_jax.errors import DataError


def _fields(**overrides):
  rng = np.random.default_rng(0)
  fields = dict(name='toy', x_train=rng.normal(size=(6, 4, 4, 1)).astype(np.float32),
                y_train=np.array([0, 1, 2, 0, 1, 2], np.int32),
                x_test=rng.normal(size=(3, 4, 4, 1)).astype(np.float32),
                y_test=np.array([2, 1, 0], np.int32), num_classes=3, task='multiclass')
  fields.update(overrides)
  return fields


def test_valid_dataset():
  ds = Dataset(**_fields())
  assert ds.input_shape == (4, 4, 1)
  assert 'toy' in repr(ds) and 'train=6' in repr(ds)


def test_multilabel_targets():
  ds = Dataset(**_fields(task='multilabel', y_train=np.full((6, 3), 0.8, np.float32),
                         y_test=np.zeros((3, 3), np.float32)))
  assert ds.task == 'multilabel'


def test_token_ids_are_accepted():
  ds = Dataset(**_fields(x_train=np.ones((6, 16), np.int32), x_test=np.ones((3, 16), np.int32)))
  assert ds.input_shape == (16,)


def _nan_inputs():
  x = np.zeros((6, 4, 4, 1), np.float32)
  x[2, 1, 1, 0] = np.nan
  return x


@pytest.mark.parametrize('overrides, match', [
    (dict(task='regression'), 'task'),
    (dict(num_classes=1), 'num_classes'),
    (dict(y_train=np.array([0, 1, 2, 0, 1, 3], np.int32)), r'outside \[0, 3\)'),
    (dict(y_test=np.array([-1, 1, 0], np.int32)), r'outside \[0, 3\)'),
    (dict(y_train=np.zeros(6, np.int64)), 'int32'),
    (dict(y_train=np.zeros(5, np.int32)), 'one row per example'),
    (dict(x_train=_nan_inputs()), 'NaN'),
    (dict(x_test=np.full((3, 4, 4, 1), np.inf, np.float32)), 'NaN or infinite'),
    (dict(x_train=np.zeros((6, 4, 4, 1), np.float64)), 'float32'),
    (dict(x_test=np.zeros((3, 5, 4, 1), np.float32)), 'differ'),
    (dict(x_test=np.zeros((0, 4, 4, 1), np.float32), y_test=np.zeros(0, np.int32)), 'non-empty'),
    (dict(task='multilabel', y_train=np.full((6, 3), 1.5, np.float32),
          y_test=np.zeros((3, 3), np.float32)), r'\[0, 1\]'),
    (dict(task='multilabel', y_test=np.zeros((3, 2), np.float32),
          y_train=np.zeros((6, 3), np.float32)), r'\[3, 3\]'),
    (dict(noisy=np.zeros(5, bool)), r'noisy must be None or a bool array of shape \[6\]'),
    (dict(noisy=np.zeros(6, np.int32)), 'noisy must be None or a bool array'),
])
def test_invalid_fields_raise_data_error(overrides, match):
  with pytest.raises(DataError, match=match) as info:
    Dataset(**_fields(**overrides))
  assert "dataset 'toy'" in str(info.value)
