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
the snapshot epoch and are never logged or written.
"""

import jax
import jax.numpy as jnp
import numpy as np

from dpal_jax.al import lhd
from dpal_jax.al import strategies
from dpal_jax.dpsgd import sharding
from dpal_jax.dpsgd.train_state import EMATrainState
from dpal_jax.errors import ConfigError
from dpal_jax.models import inference

EMA_DECAY = 0.999   # the cap of the mean-teacher schedule min(1 − 1/(t+1), 0.999)


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
                fixed_epoch: int | None, key: jax.Array, eval_batch_size: int, **phase_kwargs):
  """The phase's `steps` over `epochs` epochs, with the snapshot pair taken once (module docstring).

  `phase_kwargs` are `Trainer.train_phase`'s (sample_rates, noise_multiplier, expected_batch_size, rng,
  private, phase). Returns the train state (with its `snapshot`).
  """
  if not isinstance(state, EMATrainState):
    raise ValueError('ema_phase.train_phase needs a Trainer with an EMA (ema_decay)')
  bounds = [round(steps * e / epochs) for e in range(epochs + 1)]
  rule = lhd.SnapshotRule()
  for epoch in range(epochs):
    if bounds[epoch + 1] > bounds[epoch]:
      state, _ = trainer.train_phase(state, x, y, steps=bounds[epoch + 1] - bounds[epoch],
                                     key=jax.random.fold_in(key, epoch), progress=False, **phase_kwargs)
    if fixed_epoch is not None:
      due = epoch + 1 == fixed_epoch
    else:
      # Unnoised accuracies of labeled data: only the (non-private) snapshot moment depends on them.
      sensitive_gap = (_accuracy(trainer.model, state.params, x, y, eval_batch_size)
                       - _accuracy(trainer.model, state.ema, x, y, eval_batch_size))
      due = rule.update(sensitive_gap, last=epoch == epochs - 1)
    if due:
      copy = lambda tree: jax.tree.map(jnp.array, tree)
      state = state.replace(snapshot={strategies.ONLINE: copy(state.params),
                                      strategies.EMA: copy(state.ema)})
  return state
