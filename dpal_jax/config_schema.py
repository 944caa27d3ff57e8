"""The fields a config may hold, each with its check; `check(config)` refuses a bad config up front.

A config is a tree of ConfigDicts whose leaves are fields, each declared with its default in
`configs/default.py`. `check` runs before any data is read or any file is written, and raises a one-line
ConfigError naming the field and the fix when
1. a leaf is not a known field: not in FIELDS, nor among the fields of the config's loop (the
   `CONFIG_FIELDS` of its class in `loops.LOOPS`); the message names the closest known field;
2. a field fails its own check: its type, NaN or ±∞, its range, a registry's names;
3. two fields disagree: `model.checkpoint` for a model that takes none, a `dataset` option that the
   loader of `dataset.name` does not take.
What needs the data or the accountant (the labeling budget against the pool, δ ≤ 1/n, a feasible plan)
stays with `privacy.planner.make_plan`, which also runs before anything is written.
"""

import difflib
import functools
from collections.abc import Callable, Mapping
from typing import Any

import ml_collections

from dpal_jax import data
from dpal_jax import models
from dpal_jax import optim
from dpal_jax import registry
from dpal_jax import validate
from dpal_jax.al import strategies
from dpal_jax.data import noise_settings
from dpal_jax.dpsgd import trainer
from dpal_jax.errors import ConfigError
from dpal_jax.privacy import accounting
from dpal_jax.privacy import mechanisms
from dpal_jax.privacy import planner

Check = Callable[[str, Any], Any]   # (dotted field, value) -> the value; raises ConfigError
DEFAULT_LOOP = 'dpal'


def _loops() -> dict:
  """`loops.LOOPS`, imported on first use (the loops import this module)."""
  from dpal_jax import loops  # pylint: disable=g-import-not-at-top
  return loops.LOOPS


def _loop_name(field: str, value: Any) -> str:
  return validate.choice(field, value, _loops())


def _choice(names) -> Check:
  return functools.partial(validate.choice, choices=names)


def _optional(check: Check, **kwargs) -> Check:
  return functools.partial(validate.optional, check, **kwargs)


def _epochs(field: str, value: Any) -> Any:
  """An integer ≥ 1, or a tuple with one per phase (the planner checks their count)."""
  if isinstance(value, (list, tuple)):
    return validate.sequence(validate.positive_int, field, value)
  return validate.positive_int(field, value, hint='a tuple with one per phase also works')


_POSITIVE = functools.partial(validate.number, lo=0, lo_open=True)
_RATE = functools.partial(validate.number, lo=0, hi=1, hi_open=True)   # dropout: [0, 1)

# Every field of configs/default.py (a test keeps the two in step).
FIELDS: dict[str, Check] = {
    'loop': _loop_name,
    'seed': _optional(validate.integer, lo=0, hint='None (the default) draws all noise from OS entropy'),
    'dataset.name': _choice(data.DATASETS),
    'dataset.data_dir': _optional(validate.text),
    'dataset.test_size': _optional(validate.positive_int),
    'dataset.image_size': _optional(validate.positive_int),
    'dataset.noise': _choice(noise_settings.SETTINGS),
    'dataset.noise_mult': functools.partial(validate.number, lo=0),
    'dataset.features': _choice(data.FEATURES),
    'dataset.sites': functools.partial(validate.integer, lo=0, hint='0: no simulated sites'),
    'dataset.max_records_per_person': functools.partial(validate.integer, lo=0, hint='0: record-level DP'),
    'model.name': _choice(models.MODELS),
    'model.checkpoint': _optional(validate.text),
    'model.dropout': _RATE,
    'train.optimizer': _choice(optim.OPTIMIZERS),
    'train.learning_rate': _POSITIVE,
    'train.epochs': _epochs,
    'train.batch_size': validate.positive_int,
    'train.physical_batch_size': validate.positive_int,
    'train.clip_norm': functools.partial(validate.number, lo=0, lo_open=True, allow_inf=True,
                                         hint='inf disables clipping'),
    'train.grad_method': _choice(trainer.GRAD_METHODS),
    'train.eval_batch_size': validate.positive_int,
    'train.fresh_init': validate.boolean,
    'train.batching': _choice(('poisson', 'shuffled')),
    'train.finetune_confident': validate.boolean,
    'train.finetune_epochs': validate.positive_int,
    'train.finetune_lr_multiplier': _POSITIVE,
    'privacy.enabled': validate.boolean,
    'privacy.epsilon': _POSITIVE,
    'privacy.delta': functools.partial(validate.number, lo=0, hi=1, lo_open=True, hi_open=True),
    'privacy.epsilon_al': functools.partial(validate.number, lo=0, allow_inf=True,
                                            hint='0 or inf: non-private selection'),
    'privacy.epsilon_al_split': _choice(('fixed', 'auto')),
    'privacy.mode': _choice(planner.MODES),
    'privacy.accountant': _choice(accounting.ACCOUNTANTS),
    'privacy.query_mechanism': _choice(mechanisms.MECHANISMS),
    'privacy.ledger_path': _optional(validate.text),
    'privacy.epsilon_finetune': _optional(_POSITIVE),
    'al.strategy': _choice(strategies.STRATEGIES),
    'al.initial_size': validate.positive_int,
    'al.query_sizes': functools.partial(validate.sequence, validate.positive_int),
    'al.labeling_budget': validate.positive_int,
    'al.query_batch_size': validate.positive_int,
    'al.mc_samples': validate.positive_int,
    'al.mc_dropout': _RATE,
    'al.log_fidelity': validate.boolean,
    'al.fallback': _choice(('none', 'random')),
    'al.lhd_snapshot_epoch': _optional(validate.positive_int, hint='None: the accuracy rule, or the last '
                                       'epoch under DP'),
    'al.lhd_score_bound': _POSITIVE,
}


# Sections whose keys the user names (a mapping in the config): each entry's check, by the section.
MAPPINGS: dict[str, Check] = {
    'privacy.group_epsilon': _POSITIVE,   # {group name: its ε target}; the planner checks names and caps
}


def known_fields(loop: str = DEFAULT_LOOP) -> dict[str, Check]:
  """FIELDS, the audit's fields (any loop may enable the audit) and the fields only `loop` reads: its Loop
  class's `CONFIG_FIELDS` ({field: Check}), if any."""
  loop_class = registry.resolve(_loops(), loop, 'loop')
  audit_fields = registry.resolve(_loops(), 'audit', 'loop').CONFIG_FIELDS  # audit.enabled: any loop
  return FIELDS | dict(audit_fields) | dict(getattr(loop_class, 'CONFIG_FIELDS', {}))


def leaves(config: ml_collections.ConfigDict, prefix: str = '') -> dict[str, Any]:
  """{dotted field: value} of every leaf of `config` (sections are ConfigDicts)."""
  out = {}
  for key, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      out |= leaves(value, f'{prefix}{key}.')
    else:
      out[f'{prefix}{key}'] = value
  return out


def unknown_field(field: str, known: Mapping[str, Any] | list[str]) -> ConfigError:
  """The error for a config field that is none of `known`, naming the closest known one.

  >>> unknown_field('privacy.epsilonn', ['privacy.epsilon', 'privacy.epsilon_al'])
  ConfigError('privacy.epsilonn is not a config field; did you mean privacy.epsilon?')
  """
  close = difflib.get_close_matches(field, list(known), n=1)
  fix = f'did you mean {close[0]}?' if close else 'configs/default.py lists every field'
  return ConfigError(f'{field} is not a config field; {fix}')


def check(config: ml_collections.ConfigDict) -> None:
  """Raises ConfigError (field and fix, one line) unless every field of `config` is known and valid."""
  values = leaves(config)
  fields = known_fields(values.get('loop', DEFAULT_LOOP))
  for field in values:
    if field not in fields and field.rpartition('.')[0] not in MAPPINGS:
      raise unknown_field(field, fields)
  for field, value in values.items():
    fields.get(field, MAPPINGS.get(field.rpartition('.')[0]))(field, value)
  if 'dataset' in config:
    data.loader_options(config.dataset)
  if 'model' in config:
    models.check_checkpoint(config.model)
