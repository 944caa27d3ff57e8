"""Runs a DP active-learning experiment.

  python -m dpal_jax.main --config=configs/default.py [--config.<field>=<value> …] [--workdir=DIR]

Re-running the same command with the same --workdir resumes from the last checkpoint. On several hosts,
start the same command on each with --coordinator_address, --num_processes and --process_id (or
--distributed on a cluster JAX detects); see dpal_jax/launch.py. Errors end with
one line on stderr (`dpal_jax.cli`): exit 2 for a config error, 1 for missing data, a damaged
checkpoint, an exhausted budget or an OS error.
"""

import logging as py_logging
import os

from absl import flags
from absl import logging
from ml_collections import config_flags

from dpal_jax import cli
from dpal_jax import launch

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Experiment config file.', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Run folder (default: runs/<config file name>).')


def default_workdir(config_path: str) -> str:
  return os.path.join('runs', os.path.splitext(os.path.basename(config_path))[0])


def _quiet_library_logs(record) -> bool:
  """Keeps the run's own INFO lines; drops the per-save chatter of orbax."""
  return record.levelno >= py_logging.WARNING or '/orbax/' not in record.pathname


def main(argv):
  del argv
  # pylint: disable-next=g-import-not-at-top  (after flags: faster --help)
  from dpal_jax import config_schema, loops
  config_schema.check(_CONFIG.value)  # a bad config is one line, before JAX starts
  logging.set_verbosity(logging.WARNING)  # JAX's start-up chatter (backends, cache) is not the run's
  launch.start()  # joins a multi-process run when asked; turns on the compilation cache
  logging.set_verbosity(logging.INFO)
  py_logging.getLogger('absl').addFilter(_quiet_library_logs)
  workdir = _WORKDIR.value or default_workdir(flags.FLAGS['config'].config_filename)
  summary = loops.run(_CONFIG.value, workdir)
  # Loops without cohorts (PATE: partitions) give their guaranteed ε alone.
  epsilons = summary.get('epsilon_per_cohort', [summary.get('epsilon_guaranteed', float('nan'))])
  print(f"final test {summary['metric']}: {summary['final_test_metric']:.4f}; "
        f"ε per cohort: {', '.join(f'{e:.3f}' for e in epsilons)} "
        f"(target {summary['target_epsilon']}, δ={summary['delta']}); results in {workdir}")


if __name__ == '__main__':
  flags.mark_flag_as_required('config')
  cli.run(main)
