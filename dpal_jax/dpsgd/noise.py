"""Gaussian noise N(0, σ²C²) per coordinate, added once per logical batch to the clipped-gradient sum."""

import jax
import jax.numpy as jnp


def add_gaussian_noise(tree, key: jax.Array, stddev: jnp.ndarray):
  """`tree` + independent N(0, stddev²) noise in every coordinate (stddev = σ·C).

  The noise depends only on `key` and the shapes, never on the data: that is what makes the released
  sum a Gaussian mechanism with sensitivity C.
  """
  leaves, treedef = jax.tree.flatten(tree)
  keys = jax.random.split(key, len(leaves))
  noisy = [leaf + stddev * jax.random.normal(k, leaf.shape, leaf.dtype) for leaf, k in zip(leaves, keys)]
  return jax.tree.unflatten(treedef, noisy)
