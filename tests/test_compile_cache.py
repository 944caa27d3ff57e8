"""The persistent compilation cache: where it lives, its off switch, and a second process that compiles
nothing the first one compiled (it writes no new entry)."""

import os
import subprocess
import sys

import jax

from dpal_jax import compile_cache

ROOT = os.path.dirname(os.path.dirname(__file__))
COMPILE = '''
import sys
from dpal_jax import compile_cache
compile_cache.enable(sys.argv[1])
import jax, jax.numpy as jnp
jax.block_until_ready(jax.jit(lambda x: jnp.tanh(x @ x.T).sum())(jnp.ones((64, 64))))
'''


def test_resolve_default_environment_and_off(monkeypatch, tmp_path):
  monkeypatch.delenv(compile_cache.ENV, raising=False)
  monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path))
  assert compile_cache.resolve(None) == str(tmp_path / 'dpal_jax' / 'jax')
  monkeypatch.setenv(compile_cache.ENV, str(tmp_path / 'elsewhere'))
  assert compile_cache.resolve(None) == str(tmp_path / 'elsewhere')
  monkeypatch.setenv(compile_cache.ENV, 'off')
  assert compile_cache.resolve(None) is None
  assert compile_cache.resolve('OFF') is None and compile_cache.resolve('') is None
  assert compile_cache.resolve(str(tmp_path / 'flag')) == str(tmp_path / 'flag')


def test_temporary_restores_the_previous_settings():
  before = jax.config.jax_compilation_cache_dir, jax.config.jax_enable_compilation_cache
  with compile_cache.temporary() as path:
    assert jax.config.jax_compilation_cache_dir == path and os.path.isdir(path)
  assert (jax.config.jax_compilation_cache_dir, jax.config.jax_enable_compilation_cache) == before
  assert not os.path.exists(path)


def test_a_second_process_loads_what_the_first_compiled(tmp_path):
  cache = tmp_path / 'cache'

  def compile_once():
    result = subprocess.run([sys.executable, '-c', COMPILE, str(cache)], cwd=ROOT, capture_output=True,
                            text=True, timeout=300, env=dict(os.environ, JAX_PLATFORMS='cpu'))
    assert result.returncode == 0, result.stderr[-2000:]
    return {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}

  first = compile_once()
  assert any(name.startswith('jit__lambda') for name in first)
  assert compile_once() == first  # every executable was found: nothing new written, nothing rewritten


def test_off_writes_nothing(tmp_path):
  result = subprocess.run([sys.executable, '-c', COMPILE, 'off'], cwd=ROOT, capture_output=True,
                          text=True, timeout=300,
                          env=dict(os.environ, JAX_PLATFORMS='cpu', XDG_CACHE_HOME=str(tmp_path)))
  assert result.returncode == 0, result.stderr[-2000:]
  assert not (tmp_path / 'dpal_jax').exists()
