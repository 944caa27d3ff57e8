"""Shuffled epochs (train.batching 'shuffled'): each row once per epoch, the scan equals a step-by-step
reference loop (mean-loss optimizer steps, EMA after each), the paper's in-epoch accuracies."""

import functools

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dpal_jax.dpsgd import shuffled
from dpal_jax.dpsgd.train_state import ema_update
from dpal_jax.dpsgd.trainer import Trainer
from dpal_jax.models.mlp import MLP


@hypothesis.settings(max_examples=10, deadline=None)
@hypothesis.given(n=st.integers(1, 90), batches=st.integers(1, 12))
def test_deal_uses_every_row_once_in_batches_of_nearly_equal_size(n, batches):
  hypothesis.assume(batches <= n)
  rows, mask = (np.asarray(a) for a in shuffled.deal(jax.random.key(n), n, batches))
  assert rows.shape == mask.shape == (batches, -(-n // batches))
  np.testing.assert_array_equal(np.sort(rows[mask]), np.arange(n))
  assert set(mask.sum(1).tolist()) <= {n // batches, -(-n // batches)}


@functools.lru_cache(maxsize=1)
def _trainer():
  return Trainer(MLP(num_classes=3, hidden=(8,)), optax.adam(1e-2), task='multiclass', clip_norm=1.0,
                 physical_batch_size=8, ema_decay=0.999)


def _data(n=21):
  rng = np.random.default_rng(0)
  x = rng.normal(size=(n, 4)).astype(np.float32)
  return x, (x[:, 0] > 0).astype(np.int32) + (x[:, 1] > 1).astype(np.int32)


def _reference_epoch(trainer, state, x, y, steps, key):
  """The epoch step by step on the host: the dealt batches, Adam on each batch's mean loss, then the EMA."""
  rows, mask = (np.asarray(a) for a in shuffled.deal(jax.random.fold_in(key, 0), len(x), steps))
  params, opt_state, ema, step = state.params, state.opt_state, state.ema, int(state.step)
  online_hits = ema_hits = 0
  for r, m in zip(rows, mask):
    xb, yb = x[r[m]], y[r[m]]
    loss = lambda p, xb=xb, yb=yb: jnp.mean(trainer.loss_fn(trainer.model.apply({'params': p}, xb), yb))
    online_hits += int(np.sum(np.argmax(trainer.model.apply({'params': params}, xb), -1) == yb))
    updates, opt_state = trainer.optimizer.update(jax.grad(loss)(params), opt_state, params)
    params = optax.apply_updates(params, updates)
    ema_hits += int(np.sum(np.argmax(trainer.model.apply({'params': ema}, xb), -1) == yb))
    step += 1
    ema = ema_update(ema, params, jnp.asarray(step), trainer.ema_decay)
  return params, ema, step, online_hits / len(x), ema_hits / len(x)


def test_the_scanned_epoch_equals_the_step_by_step_reference():
  trainer, (x, y) = _trainer(), _data()
  state = trainer.init(jax.random.key(0), x)
  for epoch in range(2):   # the second epoch starts from a trained state (EMA decay past ½)
    key = jax.random.key(epoch + 5)
    params, ema, step, online_acc, ema_acc = _reference_epoch(trainer, state, x, y, 3, key)
    state, sensitive_online, sensitive_ema = shuffled.train_epoch(trainer, state, x, y, steps=3, key=key)
    assert int(state.step) == step
    jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=2e-5, atol=1e-6), state.params, params)
    jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=2e-5, atol=1e-6), state.ema, ema)
    assert (sensitive_online, sensitive_ema) == pytest.approx((online_acc, ema_acc))


def test_without_an_ema_the_epoch_trains_and_reports_no_ema_accuracy():
  trainer = Trainer(MLP(num_classes=3, hidden=(8,)), optax.adam(1e-2), task='multiclass', clip_norm=1.0,
                    physical_batch_size=8)
  x, y = _data()
  state = trainer.init(jax.random.key(0), x)
  before = jax.tree.map(np.array, state.params)
  state, _, sensitive_ema = shuffled.train_epoch(trainer, state, x, y, steps=2, key=jax.random.key(1))
  assert int(state.step) == 2 and sensitive_ema == 0.0
  assert any(np.any(a != b) for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(state.params)))


def test_a_non_finite_loss_names_where_it_happened():
  trainer, (x, y) = _trainer(), _data()
  state = trainer.init(jax.random.key(0), x)
  x = x.copy()
  x[3, 0] = np.nan
  with pytest.raises(FloatingPointError, match='phase 2, epoch 1: non-finite loss'):
    shuffled.train_epoch(trainer, state, x, y, steps=3, key=jax.random.key(1), where='phase 2, epoch 1')
