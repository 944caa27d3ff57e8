"""The random-selection baseline (`loop = 'random_baseline'`, the original's random.sh).

Labels al.initial_size + Σ al.query_sizes pool examples uniformly at random — independent of every record,
so the selection costs nothing — and trains once, with DP-SGD on the whole budget privacy.epsilon, on that
labeled set: one stage, one cohort. It is the DP-AL loop with no queries, so it shares its stages, ledger
and summary; compare its summary with a `dpal` run of the same config to see what selection buys.
"""

from dpal_jax.errors import ConfigError
from dpal_jax.loops import dpal


class Loop(dpal.Loop):

  def __init__(self, config):
    super().__init__(one_phase_config(config))


def one_phase_config(config):
  """`config` with every label bought at once, at random, and trained in one phase."""
  if isinstance(config.train.epochs, (list, tuple)):
    raise ConfigError(f'train.epochs ({tuple(config.train.epochs)}): loop random_baseline trains one '
                      'phase; give one number of epochs')
  derived = config.copy_and_resolve_references()
  with derived.unlocked():
    derived.al.initial_size = config.al.initial_size + sum(config.al.query_sizes)
    derived.al.query_sizes = ()
    derived.al.strategy = 'random'
  return derived
