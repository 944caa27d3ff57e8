"""validate: each check accepts what it promises, refuses the rest with the field and the fix."""

import doctest
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dpal_jax import validate
from dpal_jax.errors import CheckpointError
from dpal_jax.errors import ConfigError


def test_doctests_pass():
  result = doctest.testmod(validate)
  assert result.attempted >= 10 and result.failed == 0


def test_choice_names_the_field_and_lists_the_choices_sorted():
  assert validate.choice('privacy.mode', 'naive', {'naive': 1, 'cohort_exact': 2}) == 'naive'
  with pytest.raises(ConfigError) as e:
    validate.choice('privacy.mode', 'exact', ('naive', 'cohort_exact'))
  assert str(e.value) == "privacy.mode 'exact' is unknown; choose one of: cohort_exact, naive"
  with pytest.raises(ConfigError, match="privacy.mode None is unknown"):
    validate.choice('privacy.mode', None, ('naive',))


def test_unknown_keeps_the_wording_with_another_error_type():
  error = validate.unknown('NFNet variant', 'F9', ('F1', 'F0'), error=CheckpointError)
  assert isinstance(error, CheckpointError)
  assert str(error) == "NFNet variant 'F9' is unknown; choose one of: F0, F1"


@given(st.sampled_from([(None, None), (0.0, None), (None, 1.0), (0.0, 1.0)]), st.booleans(),
       st.booleans(), st.booleans())
def test_number_always_refuses_nan_and_booleans(bounds, lo_open, hi_open, allow_inf):
  lo, hi = bounds
  for value in (math.nan, np.float32('nan'), True, False, '1.0', None):
    with pytest.raises(ConfigError, match='^x '):
      validate.number('x', value, lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open, allow_inf=allow_inf)


@given(st.floats(allow_nan=False), st.floats(-10, 10), st.floats(0, 10), st.booleans(), st.booleans())
def test_number_accepts_exactly_the_interval(x, lo, width, lo_open, hi_open):
  hi = lo + width
  inside = (x > lo or x == lo and not lo_open) and (x < hi or x == hi and not hi_open)
  if inside:
    assert validate.number('f', x, lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open) == x
  else:
    with pytest.raises(ConfigError, match=r'^f \(.*\) must be a finite number in '):
      validate.number('f', x, lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open)


def test_number_infinity_only_where_allowed():
  with pytest.raises(ConfigError, match=r'train.learning_rate \(inf\) must be a finite number > 0'):
    validate.number('train.learning_rate', math.inf, lo=0, lo_open=True)
  assert validate.number('train.clip_norm', math.inf, lo=0, lo_open=True, allow_inf=True) == math.inf
  with pytest.raises(ConfigError, match=r'must be a number in \(0, ∞\]'):
    validate.number('train.clip_norm', -math.inf, lo=0, lo_open=True, allow_inf=True)
  with pytest.raises(ConfigError, match=r'must be a number in \[0, 1\]'):
    validate.number('p', math.inf, lo=0, hi=1, allow_inf=True)
  assert validate.number('p', np.float64(0.5), lo=0, hi=1) == 0.5


def test_integer_refuses_booleans_floats_and_out_of_range():
  assert validate.integer('seed', np.int64(3), lo=0) == 3
  assert isinstance(validate.integer('seed', np.int64(3)), int)
  for value in (True, 2.0, math.nan, '3', None):
    with pytest.raises(ConfigError, match=r'^seed \(.*\) must be an integer'):
      validate.integer('seed', value)
  with pytest.raises(ConfigError, match=r'seed \(-1\) must be an integer ≥ 0; None draws'):
    validate.integer('seed', -1, lo=0, hint='None draws OS entropy')
  with pytest.raises(ConfigError, match=r'in \[1, 3\]'):
    validate.integer('k', 4, lo=1, hi=3)
  with pytest.raises(ConfigError, match='al.query_batch_size'):
    validate.positive_int('al.query_batch_size', 0)


def test_boolean_text_optional_sequence():
  assert validate.boolean('privacy.enabled', False) is False
  with pytest.raises(ConfigError, match='privacy.enabled'):
    validate.boolean('privacy.enabled', 1)
  assert validate.text('dataset.data_dir', '/data') == '/data'
  with pytest.raises(ConfigError, match='dataset.data_dir'):
    validate.text('dataset.data_dir', 3)
  assert validate.optional(validate.text, 'dataset.data_dir', None) is None
  with pytest.raises(ConfigError, match='dataset.data_dir'):
    validate.optional(validate.text, 'dataset.data_dir', '')
  assert validate.sequence(validate.positive_int, 'al.query_sizes', [1, 2]) == (1, 2)
  assert validate.sequence(validate.positive_int, 'al.query_sizes', ()) == ()
  for value in ('12', 12, None):
    with pytest.raises(ConfigError, match=r'^al.query_sizes \(.*\) must be a tuple'):
      validate.sequence(validate.positive_int, 'al.query_sizes', value)


def test_existing_file(tmp_path):
  path = tmp_path / 'weights.npz'
  path.write_bytes(b'x')
  assert validate.existing_file('model.checkpoint', str(path)) == str(path)
  with pytest.raises(ConfigError, match='model.checkpoint .* must be a file, not a directory'):
    validate.existing_file('model.checkpoint', str(tmp_path))
  with pytest.raises(ConfigError, match="model.checkpoint: no file at '.*missing.npz'; give it"):
    validate.existing_file('model.checkpoint', str(tmp_path / 'missing.npz'), hint='give it')


def test_imports_only_the_standard_library_and_errors():
  with open(validate.__file__, encoding='utf-8') as f:
    imports = {line.split()[1] for line in f if line.startswith(('import ', 'from '))}
  assert imports <= {'math', 'numbers', 'os', 'collections.abc', 'typing', 'dpal_jax.errors'}, imports
