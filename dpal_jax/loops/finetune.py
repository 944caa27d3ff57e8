"""Confident fine-tuning of a trained phase (`train.finetune_confident`, al/finetune.py, docs/lhd.md).

Non-private only: the pseudo-labeled pool points become training data, which the ledger does not
account, so `check` refuses it under privacy.enabled. The fine-tuning trainer is the phase's with 100×
the learning rate and a fresh optimizer state (and the same EMA, which keeps following the parameters);
each of `train.finetune_epochs` epochs re-augments the set and takes ⌊n / B⌋ plain steps at rate B / n.
"""

import jax
import numpy as np

from dpal_jax import optim
from dpal_jax.al import finetune
from dpal_jax.dpsgd import sharding
from dpal_jax.dpsgd.trainer import Trainer
from dpal_jax.errors import ConfigError

LR_MULTIPLIER = 100.0


def check(config, task: str) -> None:
  """Raises ConfigError when train.finetune_confident cannot run: under privacy or on multi-label data."""
  if not config.train.get('finetune_confident', False):
    return
  if config.privacy.enabled:
    raise ConfigError('train.finetune_confident trains on pseudo-labeled pool points, whose privacy the '
                      'ledger does not account; set privacy.enabled=False or train.finetune_confident=False')
  if task != 'multiclass':
    raise ConfigError('train.finetune_confident needs single-label data (max-probability confidence); '
                      'set train.finetune_confident=False')


def make_trainer(config, trainer: Trainer) -> Trainer:
  """The phase's trainer with LR_MULTIPLIER × train.learning_rate."""
  return Trainer(trainer.model, optim.get(config.train.optimizer, LR_MULTIPLIER * config.train.learning_rate),
                 task='multiclass', clip_norm=trainer.clip_norm, physical_batch_size=trainer.physical_batch_size,
                 grad_method=trainer.grad_method, mesh=trainer.mesh, ema_decay=trainer.ema_decay)


def run(config, trainer: Trainer, state, x_labeled, x_unlabeled, *, rng: np.random.Generator,
        key: jax.Array):
  """The train state after confident fine-tuning (unchanged when the confident set is too small)."""
  found = finetune.confident_set(trainer.model, state.params, x_labeled, x_unlabeled,
                                 batch_size=config.train.eval_batch_size)
  if found is None:
    return state
  x, y = found
  batch = min(config.train.batch_size, len(x))
  state = state.replace(opt_state=sharding.replicate(trainer.optimizer.init(state.params), trainer.mesh))
  for epoch in range(config.train.finetune_epochs):
    state, _ = trainer.train_phase(state, finetune.strong_augment(x, rng), y,
                                   sample_rates=np.full(len(x), batch / len(x)), steps=len(x) // batch,
                                   noise_multiplier=0.0, expected_batch_size=float(batch), rng=rng,
                                   key=jax.random.fold_in(key, epoch), private=False, progress=False)
  return state
