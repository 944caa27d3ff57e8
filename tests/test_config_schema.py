"""config_schema: the table of fields agrees with the configs, and every bad value is refused by name."""

import doctest
import glob
import importlib
import math
import os

import ml_collections
import pytest

from configs import default
from dpal_jax import config_schema
from dpal_jax import loops
from dpal_jax import validate
from dpal_jax.errors import ConfigError
from tests.configs import tiny

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Sections that an entry point other than the experiment reads (bench.py checks its own).
OWN_SECTIONS = ('bench.',)


class ToyLoop:
  """A loop that reads one field of its own, declared as loops declare theirs."""
  CONFIG_FIELDS = {'toy.rounds': validate.positive_int}


def _config_modules():
  paths = glob.glob(os.path.join(REPO, 'configs', '**', '*.py'), recursive=True)
  paths += glob.glob(os.path.join(REPO, 'tests', 'configs', '*.py'))
  names = [os.path.relpath(p, REPO)[:-3].replace(os.sep, '.') for p in paths]
  return sorted(n for n in names if not n.endswith('__init__'))


def _set(config, dotted, value):
  """Sets a field whatever its declared type (ml_collections refuses a float in an int field)."""
  *sections, name = dotted.split('.')
  node = config
  for section in sections:
    if section not in node:
      node[section] = ml_collections.ConfigDict()
    node = node[section]
  if name in node:
    del node[name]
  node[name] = value
  return config


def _refusal(dotted, value, base=tiny.get_config):
  with pytest.raises(ConfigError) as e:
    config_schema.check(_set(base(), dotted, value))
  return str(e.value)


def test_doctests_pass():
  result = doctest.testmod(config_schema)
  assert result.attempted >= 1 and result.failed == 0


@pytest.mark.parametrize('module', _config_modules())
def test_every_field_of_every_config_is_in_the_table(module):
  config = importlib.import_module(module).get_config()
  fields = [f for f in config_schema.leaves(config) if not f.startswith(OWN_SECTIONS)
            and f.rpartition('.')[0] not in config_schema.MAPPINGS]   # user-named keys: checked by value
  known = config_schema.known_fields(config.get('loop', config_schema.DEFAULT_LOOP))
  assert set(fields) <= set(known), set(fields) - set(known)


def test_every_table_field_is_declared_in_the_default_config():
  declared = set(config_schema.leaves(default.get_config()))
  assert set(config_schema.known_fields('dpal')) == declared


@pytest.mark.parametrize('module', [m for m in _config_modules() if '.bench.' not in m])
def test_every_experiment_config_passes(module):
  config_schema.check(importlib.import_module(module).get_config())


@pytest.mark.parametrize('field', sorted(config_schema.FIELDS))
def test_every_field_refuses_nan(field):
  message = _refusal(field, math.nan)
  assert message.startswith(f'{field} ') or message.startswith(f'{field}:'), message


@pytest.mark.parametrize('dotted, value, says', [
    ('privacy.epsilon_al', math.nan, 'must be a number in [0, ∞]'),
    ('privacy.epsilon_al', -1.0, 'must be a number in [0, ∞]'),
    ('privacy.epsilon', math.inf, 'finite number > 0'),
    ('privacy.delta', 1.0, 'in (0, 1)'),
    ('privacy.enabled', 1, 'True or False'),
    ('privacy.mode', 'exact', 'is unknown; choose one of: cohort_exact, naive'),
    ('train.epochs', 'nan', 'integer ≥ 1'),
    ('train.epochs', (10, 0, 10, 10), 'train.epochs[1] (0)'),
    ('train.learning_rate', 0.0, 'finite number > 0'),
    ('train.learning_rate', -1e-3, 'finite number > 0'),
    ('train.learning_rate', math.inf, 'finite number > 0'),
    ('train.clip_norm', 0.0, 'in (0, ∞]'),
    ('train.eval_batch_size', 0, 'integer ≥ 1'),
    ('train.grad_method', 'fast', 'choose one of: auto, conv, conv_two_pass, ghost, vmap'),
    ('seed', -1, 'integer ≥ 0'),
    ('seed', 1.5, 'integer ≥ 0'),
    ('al.query_batch_size', 0, 'integer ≥ 1'),
    ('al.mc_samples', 0, 'integer ≥ 1'),
    ('al.mc_dropout', 1.0, 'in [0, 1)'),
    ('al.query_sizes', 100, 'must be a tuple'),
    ('model.dropout', -0.1, 'in [0, 1)'),
    ('dataset.test_size', 0, 'integer ≥ 1'),
    ('loop', 'nope', "loop 'nope' is unknown; choose one of: audit, dpal"),
])
def test_bad_values_are_refused_naming_the_field(dotted, value, says):
  message = _refusal(dotted, value)
  assert message.startswith(dotted) and says in message, message


def test_unknown_fields_name_the_closest_known_one():
  assert _refusal('privacy.epsilonn', 3.0) == (
      'privacy.epsilonn is not a config field; did you mean privacy.epsilon?')
  assert _refusal('trian.batch_size', 64) == (
      'trian.batch_size is not a config field; did you mean train.batch_size?')
  assert 'configs/default.py lists every field' in _refusal('zzz', 1)


def test_fields_that_must_agree(tmp_path):
  assert _refusal('dataset.image_size', 64).startswith(
      "dataset.image_size (64) is not an option of dataset.name 'digits'")
  config = _set(tiny.get_config(), 'dataset.name', 'bloodmnist')
  config_schema.check(_set(config, 'dataset.image_size', 128))
  weights = tmp_path / 'F0_haiku.npz'
  weights.write_bytes(b'x')
  assert "model.name 'mlp' starts from no checkpoint" in _refusal('model.checkpoint', str(weights))
  nfnet = lambda: _set(tiny.get_config(), 'model.name', 'nfnet_f0')  # noqa: E731
  assert 'not a directory' in _refusal('model.checkpoint', str(tmp_path), base=nfnet)
  assert 'no file at' in _refusal('model.checkpoint', str(tmp_path / 'missing.npz'), base=nfnet)
  config_schema.check(_set(nfnet(), 'model.checkpoint', str(weights)))


def test_a_loop_adds_its_own_fields(monkeypatch):
  monkeypatch.setitem(loops.LOOPS, 'toy', 'tests.test_config_schema:ToyLoop')
  config = _set(tiny.get_config(), 'toy.rounds', 3)
  with pytest.raises(ConfigError, match='toy.rounds is not a config field'):
    config_schema.check(config)     # the dpal loop does not read it
  config_schema.check(_set(config, 'loop', 'toy'))
  with pytest.raises(ConfigError, match=r'toy.rounds \(0\) must be an integer ≥ 1'):
    config_schema.check(_set(config, 'toy.rounds', 0))
  config_schema.check(_set(tiny.get_config(), 'loop', 'dpal'))
