"""Gaussian noise N(0, σ²C²) per coordinate, added once per logical batch to the clipped-gradient sum.

Large leaves are drawn in blocks of `BLOCK` coordinates inside a loop: with JAX's partitionable
threefry (the default, `jax_threefry_partitionable`), coordinate j's bits hash only (key, j), so a block
draws exactly the values `jax.random.normal(key, leaf.shape)` would (tested bitwise), while only one
block's random bits are alive at once. On CPU, where threefry is a loop that XLA cannot fuse, this keeps
the update step's memory near the non-private one's (docs/performance.md).
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend import random as jex_random

BLOCK = 1 << 16


def add_gaussian_noise(tree, key: jax.Array, stddev: jnp.ndarray):
  """`tree` + independent N(0, stddev²) noise in every coordinate (stddev = σ·C).

  The noise depends only on `key` and the shapes, never on the data: that is what makes the released
  sum a Gaussian mechanism with sensitivity C.
  """
  leaves, treedef = jax.tree.flatten(tree)
  keys = jax.random.split(key, len(leaves))
  noisy = [_add_noise(leaf, k, stddev) for leaf, k in zip(leaves, keys)]
  return jax.tree.unflatten(treedef, noisy)


def _add_noise(leaf, key, stddev):
  n = leaf.size
  if n <= BLOCK or not _blockable(key, leaf.dtype):
    return leaf + stddev * jax.random.normal(key, leaf.shape, leaf.dtype)

  def body(i, out):
    first = i * BLOCK
    start = jnp.minimum(first, n - BLOCK)   # the last block overlaps the one before: mask the overlap
    ids = start + lax.iota(jnp.int32, BLOCK)
    z = jnp.where(ids >= first, normal_slice(key, start, BLOCK, leaf.dtype), 0)
    return lax.dynamic_update_slice(out, lax.dynamic_slice(out, (start,), (BLOCK,)) + stddev * z,
                                    (start,))
  return lax.fori_loop(0, -(-n // BLOCK), body, leaf.reshape(-1)).reshape(leaf.shape)


def _blockable(key, dtype) -> bool:
  """Blocks reproduce `jax.random.normal` only for float32 threefry keys with partitionable bits."""
  return (jax.config.jax_threefry_partitionable and jnp.dtype(dtype) == jnp.float32
          and str(jax.random.key_impl(key)) == 'threefry2x32')


def normal_slice(key, start, size: int, dtype):
  """Flat coordinates [start, start + size) of `jax.random.normal(key, shape, dtype)` for any shape of
  fewer than 2³² coordinates: bits by threefry2x32 of the flat index, the mantissa trick of
  `jax.random.uniform` on (-1, 1), then √2·erfinv."""
  data = jax.random.key_data(key)
  counts = start.astype(jnp.uint32) + lax.iota(jnp.uint32, size)
  bits1, bits2 = jex_random.threefry2x32_p.bind(data[0], data[1], jnp.zeros_like(counts), counts)
  float_bits = lax.shift_right_logical(bits1 ^ bits2, jnp.array(32 - jnp.finfo(dtype).nmant, jnp.uint32))
  float_bits = lax.bitwise_or(float_bits, jnp.asarray(np.array(1.0, dtype).view(np.uint32)))
  floats = lax.bitcast_convert_type(float_bits, dtype) - jnp.array(1.0, dtype)
  lo = np.nextafter(np.array(-1.0, dtype), np.array(0.0, dtype), dtype=dtype)
  uniform = lax.max(jnp.asarray(lo), floats * (np.array(1.0, dtype) - lo) + lo)
  return lax.mul(np.array(np.sqrt(2), dtype), lax.erf_inv(uniform))
