"""Batched, jitted model evaluation over a host row source, with one compiled shape per (function, batch).

The last batch is padded with zero rows to the static batch shape and the padded outputs are dropped, so
a pool or test set of any size compiles once. Batches stream: the input is read one batch at a time
(any row source with `len`, `shape`, `dtype` and slicing, e.g. a NumPy array, a memory map or a lazy
generator), at most `IN_FLIGHT` batches are queued on the devices, and each finished batch's outputs
come back to the host at once. So memory is a few batches plus the outputs (one score per row for a
query), whatever the pool size. With several local devices each batch is split across them.
"""

import collections
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

IN_FLIGHT = 4  # batches queued on the devices ahead of the host


def predict(model, params, x: np.ndarray, *, batch_size: int, train: bool = False, key=None,
            method=None) -> np.ndarray:
  """`model.apply({'params': params}, x, train=train, method=method)` for every row of `x`, batched.

  `method=None` gives the logits, `method='embed'` the penultimate features. `train=True` runs the model's
  stochastic layers (dropout) and needs `key`; batch i uses `fold_in(key, i)` for its 'dropout' stream.
  """
  if train and key is None:
    raise ValueError('predict(train=True) needs a PRNG key for the dropout stream')
  return map_batches(_forward(model, train, method), params, x, batch_size=batch_size, key=key)


def map_batches(fn: Callable, params, x, *, batch_size: int, key=None, devices=None):
  """Applies the jitted `fn(params, x_batch, key_batch)` to `x` in padded batches of a static shape.

  `fn` returns an array (or a pytree of arrays) with the batch as leading axis; the result is the same
  structure as NumPy arrays of length len(x). The batch is `batch_size`, or the next power of two ≥ len(x)
  when the whole input is smaller (a few extra compiles at most, instead of padding 10 rows to 1024),
  rounded up to a multiple of the number of `devices` (default: this process's local devices), over
  which each batch is split and `params` replicated. `key_batch` is `fold_in(key, i)` for batch i (None
  when `key` is None).
  """
  if batch_size < 1:
    raise ValueError(f'batch_size must be positive, got {batch_size}')
  devices = list(jax.local_devices() if devices is None else devices)
  n = len(x)
  batch = min(batch_size, _next_power_of_two(max(n, 1)))
  batch = -(-batch // len(devices)) * len(devices)
  params, rows_sharding = _place(params, devices)
  pending, outputs = collections.deque(), []
  for i, start in enumerate(range(0, max(n, 1), batch)):
    rows = np.asarray(x[start:start + batch])
    if len(rows) < batch:
      rows = np.concatenate([rows, np.zeros((batch - len(rows),) + tuple(x.shape[1:]), x.dtype)])
    if rows_sharding is not None:
      rows = jax.device_put(rows, rows_sharding)
    batch_key = None if key is None else jax.random.fold_in(key, i)
    pending.append(fn(params, rows, batch_key))
    if len(pending) > IN_FLIGHT:
      outputs.append(jax.tree.map(np.asarray, pending.popleft()))
  outputs.extend(jax.tree.map(np.asarray, out) for out in pending)
  return jax.tree.map(lambda *parts: np.concatenate(parts)[:n], *outputs)


def _place(params, devices):
  """(params replicated on `devices`, the batch-axis sharding of the rows; None for one device).

  Replicated global arrays of a multi-process mesh are read from this process's own copy."""
  def local(leaf):
    if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
      return leaf.addressable_data(0)
    return leaf
  params = jax.tree.map(local, params)
  if len(devices) == 1:
    return params, None
  mesh = Mesh(np.array(devices), ('batch',))
  return (jax.device_put(params, NamedSharding(mesh, PartitionSpec())),
          NamedSharding(mesh, PartitionSpec('batch')))


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
