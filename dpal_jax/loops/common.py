"""Parts every loop builds from its config: the dataset, the DP-SGD trainer, the checked privacy plan.

The trainer is data-parallel over every device of every process when there is more than one
(`dpsgd.sharding.data_mesh`); train.physical_batch_size must then be a multiple of the device count.
"""

import jax

from dpal_jax import data
from dpal_jax import evaluation
from dpal_jax import models
from dpal_jax import optim
from dpal_jax.dpsgd import sharding
from dpal_jax.dpsgd.trainer import Trainer
from dpal_jax.errors import CheckpointError
from dpal_jax.errors import ConfigError
from dpal_jax.privacy import planner
from dpal_jax.privacy.modes import ORIGINAL_MODES
from dpal_jax.privacy.plan import Plan


# The loops that account per person when the dataset names persons (`Dataset.person_id`), and those that
# honour per-group budgets (`privacy.group_epsilon`, `loops/units.py`); any other loop refuses them.
PERSON_LOOPS = ('dpal', 'random_baseline', 'pate')   # pate: whole persons per teacher partition
GROUP_LOOPS = ('dpal', 'random_baseline')
SHUFFLED_LOOPS = ('dpal', 'random_baseline')        # train.batching 'shuffled' (non-private epochs)
FINETUNE_LOOPS = ('dpal', 'random_baseline')        # train.finetune_confident (`loops/finetune.py`)


def load_dataset(config):
  """The dataset of `config.dataset` (each option passed only to a loader that takes it).

  A loop that does not account per person refuses a dataset with person ids, one without per-group
  units refuses privacy.group_epsilon, instead of silently accounting per record with one budget, and
  one that trains only on Poisson batches refuses train.batching 'shuffled' and one without fine-tuning
  train.finetune_confident, instead of ignoring them."""
  dataset = data.load_from_config(config.dataset)
  loop = config.get('loop', 'dpal')
  one_budget = 'accounts per pool example with one budget'
  asked = (('persons (Dataset.person_id)', dataset.person_id is not None, PERSON_LOOPS, one_budget),
           ('privacy.group_epsilon', bool(config.privacy.get('group_epsilon')), GROUP_LOOPS, one_budget),
           ("train.batching 'shuffled'", config.train.get('batching', 'poisson') == 'shuffled',
            SHUFFLED_LOOPS, 'trains on Poisson batches only'),
           ('train.finetune_confident', bool(config.train.get('finetune_confident', False)),
            FINETUNE_LOOPS, 'runs no confident fine-tuning'))
  for what, given, loops, why in asked:
    if given and loop not in loops:
      raise ConfigError(f'loop {loop!r} {why} and cannot honour {what}; use loop '
                        f'{" or ".join(map(repr, loops))}, or unset it')
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


def phase_release(model, params, dataset, ledger, num_labeled: int, spec, phase: int,
                  eval_batch_size: int) -> tuple[dict, str]:
  """The metrics row and log line of a trained DP-SGD phase: its test metric and the ε spent so far.

  Only DP outputs: the parameters' test metric, the plan's public steps and σ, the ledger's ε. The
  training loss and the realised Poisson batch sizes are never part of it."""
  metric_name, value = evaluation.evaluate(model, params, dataset, batch_size=eval_batch_size)
  epsilons = ledger.epsilon_per_cohort()
  row = {'phase': phase, 'num_labeled': int(num_labeled), 'steps': spec.steps,
         'noise_multiplier': spec.noise_multiplier, metric_name: value, 'test_metric': value,
         'epsilon_per_cohort': epsilons, 'epsilon_spent_max': max(epsilons)}
  log = (f'Phase {phase}: {row["num_labeled"]} labeled, {spec.steps} steps, test {metric_name} '
         f'{value:.4f}, max ε {row["epsilon_spent_max"]:.3f}.')
  return row, log


# Loops of alternating stages: odd stages train a phase, even stages query (DP-AL, PSL).

def run_alternating_stage(loop, state, stage: int):
  """Stage `stage` of a loop that alternates phases and queries: `loop._train_and_evaluate(state,
  phase)` for odd stages (phase 0, 1, ...), `loop._query(state, phase)` for even ones (phase 1, 2, ...)."""
  # pylint: disable=protected-access
  if stage % 2:
    return loop._train_and_evaluate(state, phase=(stage - 1) // 2)
  return loop._query(state, phase=stage // 2)


def check_alternating_stages(state, plan, fallback_rounds: int = 0) -> None:
  """Refuses a restored state of an alternating loop whose ledger, pool or history does not fit its stage.

  After stage s (a stop, `state.stopped`, is a stage that spent nothing) the ledger holds ⌈s/2⌉ phases and,
  with private queries, ⌊s/2⌋ paid query rounds less the `fallback_rounds` that selected at random (free),
  and with DP fine-tuning one pass per phase;
  the pool holds ⌊s/2⌋ + 1 cohorts and the history ⌈s/2⌉ rows. Anything else is a checkpoint from another
  run or a damaged one: resuming it could pay twice or publish a ledger that does not cover the run."""
  done = state.stage - (state.stopped is not None)
  phases, queries = (done + 1) // 2, done // 2
  ledger = state.ledger.to_dict()
  paid = len(ledger['queries']) + fallback_rounds
  finetunes = len(ledger.get('finetunes', []))
  if ((len(ledger['phases']), paid) != (phases, queries if plan.private_queries else 0)
      or finetunes != (phases if plan.finetunes else 0)):
    raise CheckpointError(
        f'checkpoint {state.stage} holds a ledger of {len(ledger["phases"])} phases and '
        f'{len(ledger["queries"])} queries ({finetunes} fine-tuning passes), which does not fit its '
        'stage; nothing was changed. Start a new run with a new --workdir')
  if state.pool is None or state.pool.num_cohorts != queries + 1 or len(state.history) != phases:
    raise CheckpointError(f'checkpoint {state.stage} holds a pool or history that does not fit its '
                          'stage; nothing was changed. Start a new run with a new --workdir')
