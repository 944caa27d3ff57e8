"""Data parallelism with `jax.sharding`: the batch axis is split over a 1-D mesh named 'data',
parameters, optimizer state, gradient sums and noise are replicated.

Each device computes the clipped-gradient sum of its rows under `jax.shard_map` and the sums are
added with one `psum`; the noise is drawn in the replicated update from one key, so every device adds
the same noise once and the result equals the single-device step. (Leaving the per-example step to
the SPMD partitioner instead gave wrong convolution gradients on 8 CPU devices in jax 0.10.2.) The mesh uses `jax.sharding.Mesh` (auto axis types): `jax.make_mesh`'s explicit
axes reject the per-example contraction over a sharded batch in jax 0.10.

Multi-host (`dpal_jax/distributed.py`): the mesh spans the devices of every process. Each process
runs the same steps with the same host sampler seed and the same noise key, so all draw the same
indices; `put_rows` then gathers on each process only the rows of its own devices' shards, and
`replicate` places the same host values on every process's devices.
"""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from dpal_jax.dpsgd.sampler import SENTINEL

AXIS = 'data'


def data_mesh(devices=None) -> Mesh:
  """A 1-D mesh over `devices` (default: all devices of all processes)."""
  return Mesh(np.array(devices if devices is not None else jax.devices()), (AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec(AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def data_parallel(grad_sum, mesh: Mesh | None):
  """`grad_sum(params, x, y, mask, keys) -> (sum tree, per-example values)` run per device on its rows,
  the sums added over the mesh; identity without a mesh."""
  if mesh is None:
    return grad_sum
  data, rep = PartitionSpec(AXIS), PartitionSpec()

  def local(params, x, y, mask, keys):
    total, per_example = grad_sum(params, x, y, mask, keys)
    return jax.lax.psum(total, AXIS), per_example
  # check_vma=False: the body is a plain per-device function. With it on, gradients taken inside
  # with respect to replicated values (the params, the ghost path's zero perturbations) would be
  # summed over devices per example, before clipping.
  return jax.shard_map(local, mesh=mesh, in_specs=(rep, data, data, data, data),
                       out_specs=(rep, data), check_vma=False)


def put_rows(arrays: tuple, indices: np.ndarray, mesh: Mesh | None) -> tuple:
  """The rows `indices` (1-D, or [persons, R] for person-level batches) of each pool array, and the mask
  of real rows, as device arrays.

  `SENTINEL` (padding) rows read row 0 and are masked out. Under a mesh the arrays are split along the
  batch axis and each process reads only the rows of its addressable shards.
  """
  mask = indices != SENTINEL
  rows = np.where(mask, indices, 0)
  if mesh is None:
    return tuple(jax.device_put(a[rows]) for a in arrays) + (jax.device_put(mask),)
  sharding = batch_sharding(mesh)

  def gather(a):
    return lambda index: a[rows[index[0]]]
  return tuple(jax.make_array_from_callback(rows.shape + a.shape[1:], sharding, gather(a))
               for a in arrays) + (jax.make_array_from_callback(mask.shape, sharding,
                                                                lambda index: mask[index]),)


def replicate(tree, mesh: Mesh | None):
  """Places `tree` on every device of `mesh` (or the default device)."""
  return jax.device_put(tree, replicated(mesh) if mesh is not None else None)
