"""Runs the empirical privacy audit of a config.

  python -m dpal_jax.audit --config=configs/audit.py [--config.<field>=<value> …] [--workdir=DIR]

The config is run as loop 'audit' (its `loop` field is set to it) in its own workdir, by default
runs/<config file name>_audit, never the workdir of a real run; audit.json there holds the claimed ε and
the audited lower bound of training and of the query. Errors end with one line on stderr (`dpal_jax.cli`).
"""

import os

from absl import flags
from ml_collections import config_flags

from dpal_jax import cli
from dpal_jax import launch

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Config file (configs/audit.py).',
                                          lock_config=False)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Audit folder (default: runs/<config file name>_audit).')


def main(argv):
  del argv
  launch.start()
  # pylint: disable-next=g-import-not-at-top  (after flags: faster --help)
  from dpal_jax import loops
  config = _CONFIG.value
  config.loop = 'audit'
  name = os.path.splitext(os.path.basename(flags.FLAGS['config'].config_filename))[0]
  workdir = _WORKDIR.value or os.path.join('runs', f'{name}_audit')
  audit = loops.run(config, workdir)
  for kind in ('training', 'query'):
    row = audit[kind]
    if row is not None:
      print(f'{kind}: claimed ε {row["claimed_epsilon"]:.3f}, audited lower bound {row["lower_bound"]:.3f} '
            f'({row["confidence"]:.0%} confidence, {row["correct"]}/{row["guesses"]} guesses correct, '
            f'{row["canaries"]} canaries)')
  print(f'results in {workdir}/audit.json')


if __name__ == '__main__':
  flags.mark_flag_as_required('config')
  cli.run(main)
