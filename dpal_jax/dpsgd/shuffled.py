"""Non-private training in shuffled epochs (`train.batching = 'shuffled'`): one jitted scan per epoch.

An epoch draws a permutation of the n training rows and deals it into S batches (row p of the
permutation to batch p mod S), so that every row is used once per epoch and a batch holds ⌈n/S⌉ or
⌊n/S⌋ rows; S is the phase's steps per epoch (the plan's ⌊n/B⌋). Each step applies the trainer's
optimizer to the gradient of the batch's *mean* loss, then, when the state has an EMA, the EMA update
(`train_state.ema_update`) — the PyTorch-style loop of the LHD paper's Four Moons script. The S steps run
in one `lax.scan` on device: no host round trip inside an epoch.

The epoch also counts, as that script does, the training hits of the online model (each batch's
logits before its step) and of the EMA (after the step, before the EMA update), for LHD's non-private
snapshot rule (`al.lhd.SnapshotRule`). They are computed from the training data without noise: the
caller uses them for that decision only and never releases them.

*Formal guarantees*: none. No clipping, no noise, and a permutation is not the Poisson sampling the
accountant assumes, so `loops.ema_phase.check` refuses this batching under privacy.enabled.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dpal_jax.dpsgd import sharding
from dpal_jax.dpsgd.train_state import EMATrainState, ema_update


def deal(key: jax.Array, n: int, batches: int) -> tuple[jax.Array, jax.Array]:
  """(rows [S, m], mask [S, m]): a permutation of range(n) dealt into S = `batches` batches of m = ⌈n/S⌉
  slots; `mask` marks the real rows (⌈n/S⌉ or ⌊n/S⌋ per batch, each row once)."""
  width = -(-n // batches)
  slots = jnp.concatenate([jax.random.permutation(key, n), jnp.full(batches * width - n, -1)])
  rows = slots.reshape(width, batches).T
  return jnp.maximum(rows, 0).astype(jnp.int32), rows >= 0


@functools.lru_cache(maxsize=8)
def _epoch_fn(trainer, batches: int):
  """The jitted epoch of `trainer` with `batches` steps (state donated)."""

  def step(carry, batch):
    state, x, y, key, hits = carry
    rows, mask = batch
    xb, yb = x[rows], y[rows]
    step_key = jax.random.fold_in(key, state.step)

    def mean_loss(params):
      logits = trainer.apply_train(params, xb, step_key)
      per_example = trainer.loss_fn(logits, yb)
      return jnp.sum(jnp.where(mask, per_example, 0.0)) / jnp.sum(mask), logits

    (loss, logits), grads = jax.value_and_grad(mean_loss, has_aux=True)(state.params)
    updates, opt_state = trainer.optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    new = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
    online_hits = _hits(logits, yb, mask)
    ema_hits = 0.0
    if isinstance(state, EMATrainState):
      ema_hits = _hits(trainer.model.apply({'params': state.ema}, xb), yb, mask)
      new = new.replace(ema=ema_update(state.ema, params, new.step, trainer.ema_decay))
    finite = hits[2] & jnp.isfinite(loss)
    return (new, x, y, key, (hits[0] + online_hits, hits[1] + ema_hits, finite)), None

  @functools.partial(jax.jit, donate_argnums=0)
  def epoch(state, x, y, key):
    rows, mask = deal(jax.random.fold_in(key, 0), x.shape[0], batches)
    zero = jnp.zeros((), jnp.float32)
    carry = (state, x, y, jax.random.fold_in(key, 1), (zero, zero, jnp.ones((), bool)))
    state, _, _, _, (online_hits, ema_hits, finite) = jax.lax.scan(step, carry, (rows, mask))[0]
    for leaf in jax.tree.leaves(state.params):
      finite &= jnp.all(jnp.isfinite(leaf))
    return state, online_hits, ema_hits, finite

  return epoch


def _hits(logits, y, mask):
  if y.ndim != 1:   # multi-label: no accuracy (the snapshot rule is for single-label data)
    return jnp.zeros((), jnp.float32)
  return jnp.sum(jnp.where(mask, jnp.argmax(logits, -1) == y, False)).astype(jnp.float32)


def train_epoch(trainer, state, x, y, *, steps: int, key: jax.Array, where: str = 'training'):
  """One shuffled epoch of `steps` steps over (x, y) (device or host arrays).

  Returns (state, sensitive_online_accuracy, sensitive_ema_accuracy): the epoch's training accuracies
  (module docstring; the EMA's is 0 without an EMA), unnoised functions of the training data. Raises
  FloatingPointError at a non-finite loss or parameter, naming `where`.
  """
  x, y = sharding.replicate((jnp.asarray(x), jnp.asarray(y)), trainer.mesh)
  state, online_hits, ema_hits, finite = _epoch_fn(trainer, int(steps))(state, x, y, key)
  if not bool(finite):
    raise FloatingPointError(f'{where}: non-finite loss or parameters; lower train.learning_rate, or '
                             'check the data for NaN/inf')
  n = np.float32(x.shape[0])
  return state, float(online_hits) / n, float(ema_hits) / n
