"""A training phase for strategies that read the EMA (LHD, docs/lhd.md), and a fresh network per phase.

`train_phase` runs the plan's phase epoch by epoch (its steps split evenly over `train.epochs`; the
sampling rates, σ and total steps are the plan's, so the ledger's event is unchanged) on a Trainer with
an EMA (`Trainer(ema_decay=...)`), and stores the committee's snapshot pair (online, EMA) in the train
state when the snapshot is due:

* non-private training: the paper's rule (`al.lhd.SnapshotRule`: the gap between the online and the EMA
  training accuracy shrinking 5 epochs in a row, else the last epoch), or `al.lhd_snapshot_epoch`;
* DP-SGD training: a fixed epoch, `al.lhd_snapshot_epoch` (default: the last). The snapshot is then a
  post-processing of DP-SGD iterates at a data-independent step, so it costs no privacy. The accuracy
  rule would read the labeled data without noise; it is never used under DP.

The training accuracies the rule reads are computed from labeled data without noise: they decide only
the snapshot epoch and are never logged or written. With `train.batching = 'shuffled'` (non-private only,
`check`) the epochs are the paper's shuffled ones (`dpsgd.shuffled`: one jitted scan per epoch, for any
strategy, with or without an EMA) and the rule reads the accuracies counted during the epoch, as the
paper's script does; with Poisson batches (the default) it reads the accuracies on the labeled set after
the epoch.
"""

import jax
import jax.numpy as jnp
import numpy as np

from dpal_jax.al import lhd
from dpal_jax.al import strategies
from dpal_jax.dpsgd import sharding
from dpal_jax.dpsgd import shuffled
from dpal_jax.dpsgd.train_state import EMATrainState
from dpal_jax.errors import ConfigError
from dpal_jax.models import inference

EMA_DECAY = 0.999   # the cap of the mean-teacher schedule min(1 − 1/(t+1), 0.999)


def shuffled_batches(config) -> bool:
  """Whether `train.batching` is 'shuffled'; raises ConfigError for it under privacy.enabled."""
  batching = config.train.get('batching', 'poisson')
  if batching == 'shuffled' and config.privacy.enabled:
    raise ConfigError("train.batching 'shuffled' draws permutations, not the Poisson batches DP-SGD's "
                      "accounting assumes; set train.batching='poisson' or privacy.enabled=False")
  return batching == 'shuffled'


def steps_per_epoch(steps: int, epochs: int) -> list[int]:
  """`steps` split over `epochs` epochs as evenly as whole steps allow (they sum to `steps`)."""
  bounds = [round(steps * e / epochs) for e in range(epochs + 1)]
  return [b - a for a, b in zip(bounds, bounds[1:])]


def phase_epochs(config, phase: int) -> int:
  """`train.epochs` of `phase` (an int, or one per phase)."""
  epochs = config.train.epochs
  return int(epochs[phase] if isinstance(epochs, (list, tuple)) else epochs)


def snapshot_epoch(config, phase: int) -> int | None:
  """The fixed snapshot epoch (1-based) of `phase`, or None for the paper's accuracy rule (non-private
  training only). Raises ConfigError for an epoch beyond the phase."""
  epochs, fixed = phase_epochs(config, phase), config.al.get('lhd_snapshot_epoch')
  if fixed is not None and not 1 <= fixed <= epochs:
    raise ConfigError(f'al.lhd_snapshot_epoch ({fixed}) must lie in [1, train.epochs = {epochs}] of phase '
                      f'{phase}; lower it or unset it (None: the last epoch under DP)')
  if fixed is None and config.privacy.enabled:
    return epochs
  return fixed


def fresh_state(trainer, state, key: jax.Array, sample_x):
  """A fresh network and optimizer state (train.fresh_init), keeping the step counter; with an EMA, a
  freshly initialised EMA network too (as the paper's toy), whose schedule continues from that step."""
  online_key, ema_key = jax.random.split(key)
  fresh = trainer.init(online_key, sample_x)
  if not isinstance(fresh, EMATrainState):
    return fresh.replace(step=state.step)
  ema = sharding.replicate(trainer.model.init(ema_key, jnp.asarray(sample_x[:1]))['params'], trainer.mesh)
  snapshot = {strategies.ONLINE: fresh.snapshot[strategies.ONLINE], strategies.EMA: jax.tree.map(jnp.array, ema)}
  return fresh.replace(step=state.step, ema=ema, snapshot=snapshot)


def committee(train_state) -> dict:
  """The named parameter sets a strategy may read: 'online', and with an EMA 'ema' and the snapshot pair."""
  members = {strategies.ONLINE: train_state.params}
  if isinstance(train_state, EMATrainState):
    members |= {strategies.EMA: train_state.ema,
                strategies.SNAPSHOT_ONLINE: train_state.snapshot[strategies.ONLINE],
                strategies.SNAPSHOT_EMA: train_state.snapshot[strategies.EMA]}
  return members


def _accuracy(model, params, x, y, batch_size) -> float:
  logits = inference.predict(model, params, x, batch_size=batch_size)
  return float(np.mean(np.argmax(logits, -1) == y))


def train_phase(trainer, state, x: np.ndarray, y: np.ndarray, *, steps: int, epochs: int,
                fixed_epoch: int | None, key: jax.Array, eval_batch_size: int, shuffled_epochs: bool = False,
                **phase_kwargs):
  """The phase's `steps` over `epochs` epochs, with the snapshot pair taken once (module docstring).

  `phase_kwargs` are `Trainer.train_phase`'s (sample_rates, noise_multiplier, expected_batch_size, rng,
  private, phase); with `shuffled_epochs` (non-private) the epochs are `dpsgd.shuffled`'s instead and
  only `phase` is read of them. Without an EMA only `shuffled_epochs` is allowed (nothing to snapshot).
  Returns the train state (with its `snapshot`, when it has an EMA).
  """
  ema = isinstance(state, EMATrainState)
  if not (ema or shuffled_epochs):
    raise ValueError('ema_phase.train_phase needs a Trainer with an EMA (ema_decay) or shuffled epochs')
  if shuffled_epochs and phase_kwargs.get('private', False):
    raise ValueError('shuffled epochs are non-private only (check)')
  where = f'phase {phase_kwargs.get("phase")}'
  if shuffled_epochs:
    x, y = sharding.replicate((jnp.asarray(x), jnp.asarray(y)), trainer.mesh)   # sent once per phase
  rule = lhd.SnapshotRule()
  for epoch, epoch_steps in enumerate(steps_per_epoch(steps, epochs)):
    epoch_key = jax.random.fold_in(key, epoch)
    if shuffled_epochs and epoch_steps:
      # The paper's accuracies, counted during the epoch (unnoised; only the snapshot moment reads them).
      state, sensitive_online, sensitive_ema = shuffled.train_epoch(
          trainer, state, x, y, steps=epoch_steps, key=epoch_key, where=f'{where}, epoch {epoch + 1}')
    elif epoch_steps:
      state, _ = trainer.train_phase(state, x, y, steps=epoch_steps, key=epoch_key, progress=False,
                                     **phase_kwargs)
    if not ema:
      continue
    if fixed_epoch is not None:
      due = epoch + 1 == fixed_epoch
    else:
      if not (shuffled_epochs and epoch_steps):
        # Unnoised accuracies of labeled data: only the (non-private) snapshot moment depends on them.
        sensitive_online = _accuracy(trainer.model, state.params, x, y, eval_batch_size)
        sensitive_ema = _accuracy(trainer.model, state.ema, x, y, eval_batch_size)
      due = rule.update(sensitive_online - sensitive_ema, last=epoch == epochs - 1)
    if due:
      copy = lambda tree: jax.tree.map(jnp.array, tree)
      state = state.replace(snapshot={strategies.ONLINE: copy(state.params),
                                      strategies.EMA: copy(state.ema)})
  return state
