"""Poisson sampling with individual rates, padded to static shapes (host side, NumPy).

Each logical batch includes example i independently with probability q_i: the batch size is random
(Poisson-binomial) and is never truncated, which is what the accountant assumes. For XLA the index
array is padded with `SENTINEL` (-1) up to a multiple of `pad_multiple` and cut into physical chunks
of at most `physical_batch_size` rows: full chunks, then one remainder chunk whose size is a multiple
of `pad_multiple`. So at most ⌈physical / pad_multiple⌉ chunk shapes are ever compiled, and each
logical batch wastes fewer than `pad_multiple` rows.
"""

import dataclasses
import math

import numpy as np

from dpal_jax.errors import ConfigError

SENTINEL = -1
MAX_CHUNK_SHAPES = 8


def choose_pad_multiple(expected_batch_size: float, physical_batch_size: int,
                        num_devices: int = 1) -> int:
  """The largest divisor of `physical_batch_size` that is a multiple of `num_devices` and at most
  min(physical, E[B]) / 8 (or the smallest such divisor).

  Padding waste per logical batch is below one multiple (≤ 1/8 of E[B], about 1/16 on average),
  and a Poisson batch of E[B] ± 4·√E[B] rows touches only a few remainder shapes.
  """
  if physical_batch_size % num_devices:
    raise ConfigError(f'train.physical_batch_size ({physical_batch_size}) must be a multiple of '
                      f'the number of devices ({num_devices})')
  target = max(1.0, min(physical_batch_size, expected_batch_size) / MAX_CHUNK_SHAPES)
  divisors = [d for d in range(num_devices, physical_batch_size + 1, num_devices)
              if physical_batch_size % d == 0]
  return max([d for d in divisors if d <= target], default=divisors[0])


@dataclasses.dataclass(frozen=True)
class PaddedBatch:
  """One logical batch: `chunks` of pool indices (SENTINEL = padding), `size` real rows."""
  chunks: tuple[np.ndarray, ...]
  size: int

  @property
  def padded_size(self) -> int:
    return sum(len(c) for c in self.chunks)


def poisson_indices(rates: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """Indices of the examples included by independent Bernoulli(rates[i]) draws, in pool order."""
  return np.flatnonzero(rng.random(len(rates)) < rates)


def pad_and_chunk(indices: np.ndarray, physical_batch_size: int, pad_multiple: int) -> PaddedBatch:
  """Pads `indices` with SENTINEL to a multiple of `pad_multiple` and splits it into chunks.

  An empty batch still yields one all-padding chunk: the step then adds noise only, as the
  accountant assumes for every step.
  """
  size = len(indices)
  padded = max(pad_multiple, pad_multiple * math.ceil(size / pad_multiple))
  full = np.full(padded, SENTINEL, dtype=np.int64)
  full[:size] = indices
  bounds = list(range(0, padded, physical_batch_size)) + [padded]
  return PaddedBatch(tuple(full[a:b] for a, b in zip(bounds[:-1], bounds[1:])), size)


class PoissonSampler:
  """Draws padded logical batches from per-example rates (one rate per pool row)."""

  def __init__(self, rates: np.ndarray, *, physical_batch_size: int, pad_multiple: int,
               rng: np.random.Generator):
    rates = np.asarray(rates, dtype=np.float64)
    if rates.ndim != 1 or np.any(rates < 0) or np.any(rates > 1):
      raise ConfigError('sample_rates must be a 1-D array of probabilities in [0, 1] '
                        '(one per training row); check the Plan the rates come from')
    if physical_batch_size % pad_multiple:
      raise ConfigError(f'train.physical_batch_size ({physical_batch_size}) must be a multiple of '
                        f'the padding multiple ({pad_multiple})')
    self.rates = rates
    self.physical_batch_size = physical_batch_size
    self.pad_multiple = pad_multiple
    self.rng = rng

  def draw(self) -> PaddedBatch:
    return pad_and_chunk(poisson_indices(self.rates, self.rng), self.physical_batch_size,
                         self.pad_multiple)
