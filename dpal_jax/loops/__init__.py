"""Loops by name (`config.loop`): one module per algorithm, all run under one protocol.

  loops.run(config, workdir)   # runs or resumes `config.loop` in `workdir`; returns the summary

Each loop module defines a `Loop(protocol.Loop)` class: its constructor prepares everything from the config
without writing anything; `protocol.execute` does the rest (lock, resume, commit before release). Adding an
algorithm is one module here plus one line in LOOPS.
"""

import importlib
import os

from dpal_jax import config_schema
from dpal_jax import distributed
from dpal_jax import registry
from dpal_jax import workdir as workdir_lib
from dpal_jax.loops import protocol

LOOPS = {
    'dpal': 'dpal_jax.loops.dpal:Loop',
    'random_baseline': 'dpal_jax.loops.random_baseline:Loop',
    'audit': 'dpal_jax.audit.loop:Loop',
    'pate': 'dpal_jax.pate.loop:Loop',
    'psl': 'dpal_jax.psl.loop:Loop',
}
AUDIT_WORKDIR = 'audit'   # under the run's workdir, when config.audit.enabled


def run(config, workdir: str) -> dict:
  """Runs (or resumes) the loop `config.loop` of `config` in `workdir`; returns the summary dict.

  Every config field is checked (`config_schema.check`) and the loop prepared before anything is written.
  With `audit.enabled`, the audit of the same config (loop 'audit') then runs in WORKDIR/audit, with its
  own lock, checkpoints and ledger, and summary.json links its audit.json.
  """
  config_schema.check(config)
  loop = _loop(config)
  if config.get('loop') == 'audit' or not config.get('audit', {}).get('enabled', False):
    return protocol.execute(loop, config, workdir)
  audit_config = importlib.import_module('dpal_jax.audit.loop').audit_config(config)
  audit = _loop(audit_config)  # refused here, before the run, if the config cannot be audited
  summary = protocol.execute(loop, config, workdir)
  protocol.execute(audit, audit_config, os.path.join(workdir, AUDIT_WORKDIR))
  summary = summary | {'audit': os.path.join(AUDIT_WORKDIR, 'audit.json')}
  if distributed.is_coordinator():
    workdir_lib.write_json(os.path.join(workdir, 'summary.json'), summary)
  return summary


def _loop_class(name: str):
  return registry.resolve(LOOPS, name, 'loop')


def _loop(config):
  return _loop_class(config.get('loop', 'dpal'))(config)
