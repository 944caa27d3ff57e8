"""Broken engines for the audit tests only (never config fields): each breaks one promise of the claim.

Each function takes a prepared audit Loop and swaps one of its engine parts (`trainer`, `sampler_class`,
`mechanism`) for a broken one, leaving the plan, the ledger and so the claimed ε as they were.
"""

import functools

import numpy as np

from dpal_jax import optim
from dpal_jax.dpsgd import sampler
from dpal_jax.dpsgd.trainer import Trainer
from dpal_jax.privacy.mechanisms import top_k

UNCLIPPED = 1e6   # a clip norm no gradient reaches


class _Trainer(Trainer):
  """A Trainer whose released noise is `noise_scale` · σ · `noise_clip` (the claim's C), whatever its
  own clip norm."""

  def __init__(self, *args, noise_scale: float, noise_clip: float, **kwargs):
    super().__init__(*args, **kwargs)
    self.noise_factor = noise_scale * noise_clip / self.clip_norm

  def logical_step(self, *args, noise_multiplier: float, **kwargs):
    return super().logical_step(*args, noise_multiplier=noise_multiplier * self.noise_factor, **kwargs)


def _swap_trainer(loop, *, clip_norm: float, noise_scale: float):
  config, dataset = loop.config, loop.dataset
  loop.trainer = _Trainer(
      loop.trainer.model, optim.get(config.train.optimizer, config.train.learning_rate), task=dataset.task,
      clip_norm=clip_norm, physical_batch_size=config.train.physical_batch_size,
      grad_method=config.train.grad_method, noise_scale=noise_scale, noise_clip=config.train.clip_norm)
  return loop


def clipping_off(loop):
  """Per-example gradients are not clipped; the noise is still σ·C for the claimed C."""
  return _swap_trainer(loop, clip_norm=UNCLIPPED, noise_scale=1.0)


def noise_scaled(loop, factor: float = 0.1):
  """The noise is `factor` · σ·C (×0.1: ten times too little)."""
  return _swap_trainer(loop, clip_norm=loop.config.train.clip_norm, noise_scale=factor)


class _Oversampler(sampler.PoissonSampler):
  def __init__(self, rates, *, factor: float, **kwargs):
    super().__init__(np.minimum(1.0, factor * np.asarray(rates)), **kwargs)


def rates_misreported(loop, factor: float = 8.0):
  """The engine samples every row (canaries included) at `factor` × the rate the accountant is told."""
  loop.sampler_class = functools.partial(_Oversampler, factor=factor)
  return loop


class _Noiseless:
  """The query mechanism with its noise left out; it still reports the honest mechanism's event."""

  def __init__(self, honest):
    self.honest = honest

  def dp_event(self):
    return self.honest.dp_event()

  def top_k(self, scores, k, *, clamp, rng):
    del rng
    return top_k.exact_top_k(top_k.clamp_scores(scores, clamp), k)


def query_noise_off(loop):
  """The selection releases the exact top-k of the clamped scores."""
  loop.mechanism = _Noiseless(loop.mechanism)
  return loop
