"""JAX's multi-process runtime (`jax.distributed`): one process per host, all running the same program.

A DP-SGD logical batch spread over P processes is still one Gaussian mechanism when three things hold:

1. **Same batch everywhere.** Every process draws the same Poisson indices (host samplers seeded alike,
   `shared_seed`); each process then gathers only the rows that land on its own devices
   (`dpsgd.sharding.put_rows`), so the pool rows of a logical batch are read once, split over the hosts.
2. **One noise draw.** The clipped sums are added over all devices (`psum`), and N(0, σ²C²) is drawn in
   the replicated update from a key every process shares: every device adds the same noise, once.
3. **One release.** The updated parameters are replicated and bit-identical on every host
   (`check_identical`); only the coordinator (`is_coordinator()`) writes files.

Start every process with the same command and config. Either give the coordinator's address, the
process count and this process's id (the flags of `dpal_jax/launch.py`: `--coordinator_address`,
`--num_processes`, `--process_id`; or `JAX_COORDINATOR_ADDRESS` with the cluster's own variables), or
pass `--distributed` on a cluster JAX detects by itself (SLURM, Open MPI, Cloud TPU, Kubernetes).
Without any of these the run stays single-process and `initialize` does nothing. On CPU the cross-process collectives are gloo's
(`jax_cpu_collectives_implementation`, the default in jax 0.10).
"""

import dataclasses
import os

import jax
import numpy as np
from jax.experimental import multihost_utils

HEARTBEAT_TIMEOUT_SECONDS = 100  # jax.distributed's default
SEED_WORDS = 4  # 128 bits of OS entropy, broadcast as uint32 words (JAX's default int width is 32)


@dataclasses.dataclass(frozen=True)
class Runtime:
  process_id: int
  num_processes: int
  local_devices: int
  global_devices: int

  @property
  def multi_process(self) -> bool:
    return self.num_processes > 1


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None, *, auto: bool = False,
               heartbeat_timeout_seconds: int = HEARTBEAT_TIMEOUT_SECONDS) -> Runtime:
  """Joins the multi-process runtime when asked to (arguments, `JAX_COORDINATOR_ADDRESS`, or `auto`).

  Must run before any other JAX call that touches a device. Returns where this process stands;
  without any request it is a no-op and reports a single process. A process that sends no heartbeat
  for `heartbeat_timeout_seconds` counts as dead and the survivors stop with an error (a run whose
  process was killed then ends everywhere, and restarting every process resumes it).
  """
  requested = (auto or coordinator_address is not None or num_processes is not None
               or process_id is not None or 'JAX_COORDINATOR_ADDRESS' in os.environ)
  if requested and not jax.distributed.is_initialized():
    jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                               process_id=process_id,
                               heartbeat_timeout_seconds=heartbeat_timeout_seconds)
  return runtime()


def runtime() -> Runtime:
  return Runtime(process_id=jax.process_index(), num_processes=jax.process_count(),
                 local_devices=jax.local_device_count(), global_devices=jax.device_count())


def is_coordinator() -> bool:
  """True in the process that writes the run's files (process 0)."""
  return jax.process_index() == 0


def shared_seed(seed: int | None) -> int:
  """A seed equal in every process: `seed` itself, or 128 bits of process 0's OS entropy.

  Use it to seed the host sampler (and the noise key) so that all processes draw the same batches and
  the same noise; each process's own entropy would give every host a different batch.
  """
  if seed is not None or jax.process_count() == 1:
    return seed if seed is not None else int(np.random.SeedSequence().entropy)
  words = np.random.SeedSequence().generate_state(SEED_WORDS, dtype=np.uint32)
  words = np.asarray(multihost_utils.broadcast_one_to_all(words)).astype(np.uint32)
  return int(sum(int(w) << (32 * i) for i, w in enumerate(words)))


def from_coordinator(tree):
  """Process 0's values of a pytree of host arrays, in every process (identity in one process).

  For host-side choices every process must agree on bit for bit, e.g. a query's selected indices.
  """
  if jax.process_count() == 1:
    return tree
  return jax.tree.map(np.asarray, multihost_utils.broadcast_one_to_all(tree))


def host_copy(tree):
  """A NumPy copy of a pytree of replicated arrays (global ones too: each host reads its own copy)."""
  def one(leaf):
    if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
      if not leaf.is_fully_replicated:
        raise ValueError(f'host_copy needs replicated arrays; got one sharded as {leaf.sharding}')
      return np.asarray(leaf.addressable_data(0))
    return np.asarray(leaf)
  return jax.tree.map(one, tree)


def check_identical(tree, what: str) -> None:
  """Raises AssertionError unless `tree` is bit-identical in every process (no-op in one process)."""
  if jax.process_count() > 1:
    multihost_utils.assert_equal(host_copy(tree), f'{what} differ between processes')


def barrier(name: str) -> None:
  """Waits until every process reaches the barrier `name` (no-op in one process)."""
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)
