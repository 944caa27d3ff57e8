"""Parts every loop builds from its config: the dataset, the DP-SGD trainer, the checked privacy plan.

The trainer is data-parallel over every device of every process when there is more than one
(`dpsgd.sharding.data_mesh`); train.physical_batch_size must then be a multiple of the device count.
"""

import jax

from dpal_jax import data
from dpal_jax import models
from dpal_jax import optim
from dpal_jax.dpsgd import sharding
from dpal_jax.dpsgd.trainer import Trainer
from dpal_jax.errors import ConfigError
from dpal_jax.privacy import planner
from dpal_jax.privacy.modes import ORIGINAL_MODES
from dpal_jax.privacy.plan import Plan


def load_dataset(config, units: bool = False):
  """The dataset of `config.dataset` (each option passed only to a loader that takes it).

  A loop that does not map pool items to privacy units (`loops/units.py`; `units=False`) refuses
  person-level DP (`Dataset.person_id`) and per-group budgets (`privacy.group_epsilon`), instead of
  silently accounting per record with one budget."""
  dataset = data.load_from_config(config.dataset)
  if not units and (dataset.person_id is not None or config.privacy.get('group_epsilon')):
    what = 'persons (dataset.person_id)' if dataset.person_id is not None else 'privacy.group_epsilon'
    raise ConfigError(f'loop {config.get("loop", "dpal")!r} accounts per pool example with one budget and '
                      f'cannot honour {what}; use loop \'dpal\' or \'random_baseline\', or unset it')
  return dataset


def make_trainer(config, dataset, ema_decay: float | None = None) -> Trainer:
  """The DP-SGD trainer of `config.model` and `config.train` for `dataset` (with an EMA of the
  parameters when `ema_decay` is given: `Trainer`)."""
  model = models.get(config.model.name, num_classes=dataset.num_classes, dropout=config.model.dropout)
  return Trainer(model, optim.get(config.train.optimizer, config.train.learning_rate),
                 task=dataset.task, clip_norm=config.train.clip_norm,
                 physical_batch_size=config.train.physical_batch_size,
                 grad_method=config.train.grad_method,
                 mesh=sharding.data_mesh() if jax.device_count() > 1 else None, ema_decay=ema_decay)


def checked_plan(config, pool_size: int, prior=(), groups=None) -> Plan:
  """The plan, refused when a cohort would end above ε in a mode that promises not to (`prior`: what every
  pool example spent in earlier campaigns; `groups`: the pool's per-group targets; `planner.make_plan`)."""
  plan = planner.make_plan(config, pool_size=pool_size, prior=prior, groups=groups)
  if plan.privacy_enabled and plan.mode not in ORIGINAL_MODES and plan.exceeds_target():
    worst = max(*plan.epsilon_per_cohort, plan.epsilon_unlabeled)
    raise ConfigError(
        f'privacy.mode {plan.mode!r} planned ε={worst:.4f} above privacy.epsilon '
        f'({plan.target_epsilon}); lower train.epochs or raise privacy.epsilon')
  return plan
