"""Loops by name (`config.loop`): one module per algorithm, all run under one protocol.

  loops.run(config, workdir)   # runs or resumes `config.loop` in `workdir`; returns the summary

Each loop module defines a `Loop(protocol.Loop)` class: its constructor prepares everything from the config
without writing anything; `protocol.execute` does the rest (lock, resume, commit before release). Adding an
algorithm is one module here plus one line in LOOPS.
"""

from dpal_jax import config_schema
from dpal_jax import registry
from dpal_jax.loops import protocol

LOOPS = {
    'dpal': 'dpal_jax.loops.dpal:Loop',
    'random_baseline': 'dpal_jax.loops.random_baseline:Loop',
    'audit': 'dpal_jax.audit.loop:Loop',
}


def run(config, workdir: str) -> dict:
  """Runs (or resumes) the loop `config.loop` of `config` in `workdir`; returns the summary dict.

  Every config field is checked (`config_schema.check`) and the loop prepared before anything is written.
  """
  config_schema.check(config)
  loop = registry.resolve(LOOPS, config.get('loop', 'dpal'), 'loop')(config)
  return protocol.execute(loop, config, workdir)
