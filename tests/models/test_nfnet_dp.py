"""A DP fine-tune of a reduced-width NFNet through the DP-SGD engine (per-example clipping).

Slow: compiling per-example gradients of even a 4-block NFNet takes 1–4 minutes on a shared 2-core CPU.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dpal_jax import optim
from dpal_jax.dpsgd import losses
from dpal_jax.dpsgd.trainer import Trainer
from third_party.nfnets import nfnet

TINY = dict(width_multiplier=1 / 8, group_width=16, depths=(1, 1, 1, 1))


def init(trainer, x):
  """Engine state on jitted-init params (an eager Flax init of NFNet is slow on CPU)."""
  params = jax.jit(trainer.model.init)(jax.random.key(0), x[:1])['params']
  return trainer.init(jax.random.key(0), x, params=params)


def data():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(2, 32, 32, 3)).astype(np.float32)
  y = rng.choice([0.0, 0.2, 0.8, 1.0], size=(2, 14)).astype(np.float32)
  return x, y


@pytest.mark.slow
def test_one_noiseless_step_is_the_mean_of_clipped_per_example_gradients():
  x, y = data()
  model = nfnet.NFNet(num_classes=14, dropout=0.0, stochdepth_rate=0.0, **TINY)
  trainer = Trainer(model, optax.sgd(1.0), task='multilabel', clip_norm=1e-3,
                    physical_batch_size=2, pad_multiple=2)
  state = init(trainer, x)
  params = jax.tree.map(np.asarray, state.params)  # the engine donates the state's buffers
  state, stats = trainer.train_phase(
      state, x, y, sample_rates=np.ones(2), steps=1, noise_multiplier=0.0, expected_batch_size=2.0,
      rng=np.random.default_rng(0), key=jax.random.key(1), progress=False)
  assert stats['mean_batch_size'] == 2.0

  loss = losses.per_example_loss('multilabel')
  grad = jax.jit(jax.grad(lambda p, xi, yi: loss(model.apply({'params': p}, xi[None]), yi[None])[0]))
  clipped = []
  for i in range(2):
    g = grad(params, x[i], y[i])
    norm = optax.global_norm(g)
    assert norm > 1e-3  # clipping is active for both examples
    clipped.append(jax.tree.map(lambda t: t * 1e-3 / norm, g))
  want = jax.tree.map(lambda p, a, b: p - (a + b) / 2, params, *clipped)
  jax.tree.map(lambda got, w: np.testing.assert_allclose(got, w, rtol=1e-3, atol=1e-7),
               state.params, want)


@pytest.mark.slow
def test_dp_sgd_agc_with_stochastic_depth_runs_and_moves_every_block():
  x, y = data()
  model = nfnet.NFNet(num_classes=14, dropout=0.2, stochdepth_rate=0.5, **TINY)
  trainer = Trainer(model, optim.get('sgd_agc', 1.0), task='multilabel', clip_norm=1.0,
                    physical_batch_size=2, pad_multiple=2)
  state = init(trainer, x)
  before = jax.tree.map(np.asarray, state.params)  # the engine donates the state's buffers
  state, stats = trainer.train_phase(
      state, x, y, sample_rates=np.full(2, 0.9), steps=3, noise_multiplier=1.0,
      expected_batch_size=2.0, rng=np.random.default_rng(1), key=jax.random.key(2),
      progress=False)
  assert stats['steps'] == 3 and np.isfinite(stats['mean_loss'])
  for name in ('stem_conv0', 'nf_block_3', 'final_conv', 'head'):
    moved = jax.tree.map(lambda a, b: float(jnp.max(jnp.abs(a - b))), state.params[name],
                         before[name])
    assert max(jax.tree.leaves(moved)) > 0, name
