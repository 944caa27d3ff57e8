"""Confident fine-tuning of a trained phase (`train.finetune_confident`, al/finetune.py, docs/lhd.md).

The fine-tuning trainer is the phase's with `train.finetune_lr_multiplier` (the paper's 100) × the
learning rate and a fresh optimizer state (and the same EMA, which keeps following the parameters).

- Non-private: each of `train.finetune_epochs` epochs re-augments the set and takes ⌊n / B⌋ plain steps
  at rate B / n; the pass is skipped when the set is smaller than `al.finetune.MIN_SIZE`.
- Under DP (`privacy.epsilon_finetune`, planned by `planner._finetunes`): the plan's `FinetunePass` —
  its steps split evenly over the epochs, each epoch re-augmented, every row of the set at the pass's
  Poisson rate q, clipped, noised at its σ, the noisy sum divided by q·N_pool (public). It always runs: a
  skip would depend on how many pool points are confident, which is not a per-record fact.

*Formal guarantees* (DP): the set is the labeled rows and the unlabeled pool points whose largest
probability under the released model exceeds 0.8, all with that model's labels. A row's membership and
label are functions of that row and the released (DP) model alone, so the pass is DP-SGD on a per-record
transform of the pool where every pool example is drawn at rate q (or not at all): the accountant's
(PoissonSampled(q, Gaussian(σ)))^S for every example, which the ledger charges every unit, labeled or not,
before the pass runs (`Ledger.check_finetune`). Person-level DP is refused (a person's records would be
drawn one by one).
"""

import jax
import numpy as np

from dpal_jax import optim
from dpal_jax.al import finetune
from dpal_jax.dpsgd import sharding
from dpal_jax.dpsgd.trainer import Trainer
from dpal_jax.errors import ConfigError
from dpal_jax.loops import ema_phase
from dpal_jax.privacy import events

LR_MULTIPLIER = 100.0   # the paper's; train.finetune_lr_multiplier overrides it


def check(config, task: str, by_person: bool = False) -> None:
  """Raises ConfigError when train.finetune_confident cannot run: on multi-label data, or person-level
  DP; the planner refuses what the DP passes are not accounted with (`planner._finetunes`)."""
  if not config.train.get('finetune_confident', False):
    return
  if config.privacy.enabled and by_person:
    raise ConfigError('train.finetune_confident under DP draws pool records one by one, not persons '
                      '(dataset.person_id); set train.finetune_confident=False or privacy.enabled=False')
  if task != 'multiclass':
    raise ConfigError('train.finetune_confident needs single-label data (max-probability confidence); '
                      'set train.finetune_confident=False')


def make_trainer(config, trainer: Trainer) -> Trainer:
  """The phase's trainer with train.finetune_lr_multiplier (LR_MULTIPLIER) × train.learning_rate."""
  multiplier = config.train.get('finetune_lr_multiplier', LR_MULTIPLIER)
  return Trainer(trainer.model, optim.get(config.train.optimizer, multiplier * config.train.learning_rate),
                 task='multiclass', clip_norm=trainer.clip_norm, physical_batch_size=trainer.physical_batch_size,
                 grad_method=trainer.grad_method, mesh=trainer.mesh, ema_decay=trainer.ema_decay)


def run(config, trainer: Trainer, state, x_labeled, x_unlabeled, *, rng: np.random.Generator,
        key: jax.Array, spec: events.FinetunePass | None = None, pool_size: int | None = None):
  """The train state after confident fine-tuning: non-private without `spec` (unchanged when the set is
  too small), or the DP pass `spec` over a pool of `pool_size` examples (module docstring)."""
  found = finetune.confident_set(trainer.model, state.params, x_labeled, x_unlabeled,
                                 batch_size=config.train.eval_batch_size,
                                 min_size=finetune.MIN_SIZE if spec is None else 0)
  if found is None:
    return state
  x, y = found
  state = state.replace(opt_state=sharding.replicate(trainer.optimizer.init(state.params), trainer.mesh))
  epochs = config.train.finetune_epochs
  if spec is None:
    batch = min(config.train.batch_size, len(x))
    rate, noise, expected, per_epoch = batch / len(x), 0.0, float(batch), [len(x) // batch] * epochs
  else:
    rate, noise, expected = spec.sample_rate, spec.noise_multiplier, spec.sample_rate * pool_size
    per_epoch = ema_phase.steps_per_epoch(spec.steps, epochs)
  rates = np.full(len(x), rate)
  for epoch, steps in enumerate(per_epoch):
    if not steps:
      continue
    state, _ = trainer.train_phase(state, finetune.strong_augment(x, rng), y, sample_rates=rates,
                                   steps=steps, noise_multiplier=noise, expected_batch_size=expected,
                                   rng=rng, key=jax.random.fold_in(key, epoch), private=spec is not None,
                                   progress=False)
  return state
