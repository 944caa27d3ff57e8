"""The persistent JAX compilation cache: executables kept on disk, so a rerun loads instead of compiling.

JAX keys each entry by the lowered program, its shapes and shardings, the backend and the jax/jaxlib
versions, so a second run of the same config (a resume, a rerun, another seed) compiles nothing it
compiled before. On by default in `$XDG_CACHE_HOME/dpal_jax/jax` (`~/.cache/...`); set the
`--compile_cache` flag (`dpal_jax/launch.py`) or `DPAL_JAX_COMPILE_CACHE` to another directory, or to
`off`. The directory holds executable code that JAX loads without checking it: never point it at one
others can write. In a multi-process run JAX itself decides which process writes an entry.
"""

import contextlib
import os
import tempfile

import jax
from jax.experimental.compilation_cache import compilation_cache

ENV = 'DPAL_JAX_COMPILE_CACHE'
OFF = frozenset({'off', 'none', 'false', '0'})
MIN_COMPILE_SECONDS = 0.0   # cache every compile: a step's is the one that matters, and all are small


def default_dir() -> str:
  base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
  return os.path.join(base, 'dpal_jax', 'jax')


def resolve(setting: str | None) -> str | None:
  """The cache directory for `setting` (None: the environment, then the default), or None if off."""
  if setting is None:
    setting = os.environ.get(ENV) or default_dir()
  if setting.strip().lower() in OFF or not setting.strip():
    return None
  return os.path.abspath(os.path.expanduser(setting))


def enable(setting: str | None = None) -> str | None:
  """Points JAX's persistent cache at `resolve(setting)` (or turns it off); returns the directory.

  Takes effect for every later compile, also when an earlier one already initialised the cache.
  """
  path = resolve(setting)
  if path is not None:
    os.makedirs(path, exist_ok=True)
    jax.config.update('jax_compilation_cache_dir', path)
    jax.config.update('jax_persistent_cache_min_compile_time_secs', MIN_COMPILE_SECONDS)
  jax.config.update('jax_enable_compilation_cache', path is not None)
  compilation_cache.reset_cache()
  return path


@contextlib.contextmanager
def temporary():
  """A cold cache in a fresh temporary directory for the block (a benchmark's first compile is then a
  real one); the previous settings are restored after it and the directory removed."""
  saved = {name: getattr(jax.config, name) for name in
           ('jax_compilation_cache_dir', 'jax_enable_compilation_cache',
            'jax_persistent_cache_min_compile_time_secs')}
  with tempfile.TemporaryDirectory(prefix='dpal_jax_compile_cache_') as path:
    enable(path)
    try:
      yield path
    finally:
      for name, value in saved.items():
        jax.config.update(name, value)
      compilation_cache.reset_cache()
