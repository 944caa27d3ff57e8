"""The runtime flags every entry point shares, and `start()`, the first call of an absl `main`.

  --coordinator_address=HOST:PORT --num_processes=N --process_id=I   join a multi-process run (all three,
                                                                     or JAX_COORDINATOR_ADDRESS & co.)
  --distributed                 join the multi-process run the cluster describes (SLURM, Open MPI,
                                Cloud TPU, Kubernetes), as jax.distributed detects it
  --compile_cache=DIR|off       the persistent compilation cache (default: $DPAL_JAX_COMPILE_CACHE,
                                else $XDG_CACHE_HOME/dpal_jax/jax)

No JAX at import, so `--help` stays fast; `start()` imports it.
"""

from absl import flags

_COORDINATOR = flags.DEFINE_string(
    'coordinator_address', None, 'host:port of process 0 for jax.distributed (multi-host runs).')
_NUM_PROCESSES = flags.DEFINE_integer('num_processes', None, 'Number of processes (multi-host runs).')
_PROCESS_ID = flags.DEFINE_integer('process_id', None, 'This process, 0 … num_processes − 1.')
_AUTO = flags.DEFINE_bool('distributed', False,
                          'Join the multi-process run of the cluster environment jax.distributed '
                          'detects (SLURM, Open MPI, Cloud TPU, Kubernetes).')
_COMPILE_CACHE = flags.DEFINE_string(
    'compile_cache', None, 'Directory of the persistent JAX compilation cache, or "off" (default: '
    '$DPAL_JAX_COMPILE_CACHE, else $XDG_CACHE_HOME/dpal_jax/jax).')


def start():
  """Joins the multi-process runtime when the flags or the environment ask for it, then turns on the
  compilation cache; returns the `distributed.Runtime`. Call it before anything else touches JAX."""
  # pylint: disable-next=g-import-not-at-top  (keeps --help free of JAX)
  from dpal_jax import compile_cache, distributed
  runtime = distributed.initialize(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value,
                                   auto=_AUTO.value)
  compile_cache.enable(_COMPILE_CACHE.value)
  return runtime
