"""Batched, jitted model evaluation over a host array, with one compiled shape per (function, batch).

The last batch is padded with zero rows to the static batch shape and the padded outputs are dropped, so
a pool or test set of any size compiles once. Dispatch is asynchronous: batches are queued on the device
and brought back to the host together at the end.
"""

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np


def predict(model, params, x: np.ndarray, *, batch_size: int, train: bool = False, key=None,
            method=None) -> np.ndarray:
  """`model.apply({'params': params}, x, train=train, method=method)` for every row of `x`, batched.

  `method=None` gives the logits, `method='embed'` the penultimate features. `train=True` runs the model's
  stochastic layers (dropout) and needs `key`; batch i uses `fold_in(key, i)` for its 'dropout' stream.
  """
  if train and key is None:
    raise ValueError('predict(train=True) needs a PRNG key for the dropout stream')
  return map_batches(_forward(model, train, method), params, x, batch_size=batch_size, key=key)


def map_batches(fn: Callable, params, x: np.ndarray, *, batch_size: int, key=None):
  """Applies the jitted `fn(params, x_batch, key_batch)` to `x` in padded batches of a static shape.

  `fn` returns an array (or a pytree of arrays) with the batch as leading axis; the result is the same
  structure as NumPy arrays of length len(x). The batch is `batch_size`, or the next power of two ≥ len(x)
  when the whole input is smaller (a few extra compiles at most, instead of padding 10 rows to 1024).
  `key_batch` is `fold_in(key, i)` for batch i (None when `key` is None).
  """
  if batch_size < 1:
    raise ValueError(f'batch_size must be positive, got {batch_size}')
  n = len(x)
  batch = min(batch_size, _next_power_of_two(max(n, 1)))
  outputs = []
  for i, start in enumerate(range(0, max(n, 1), batch)):
    rows = x[start:start + batch]
    if len(rows) < batch:
      rows = np.concatenate([rows, np.zeros((batch - len(rows),) + x.shape[1:], x.dtype)])
    batch_key = None if key is None else jax.random.fold_in(key, i)
    outputs.append(fn(params, rows, batch_key))
  return jax.tree.map(lambda *parts: np.concatenate([np.asarray(p) for p in parts])[:n], *outputs)


def _next_power_of_two(n: int) -> int:
  return 1 << (n - 1).bit_length()


@functools.lru_cache(maxsize=64)
def _forward(model, train: bool, method) -> Callable:
  """The jitted forward of one (model, mode, method); cached so that every call reuses its compiles."""

  @jax.jit
  def forward(params, x, key):
    rngs = {'dropout': key} if train else None
    return model.apply({'params': params}, jnp.asarray(x), train=train, method=method, rngs=rngs)

  return forward
