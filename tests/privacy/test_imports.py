"""privacy/ is host math: importing every module of it loads no JAX, Flax or Optax."""

import pkgutil
import subprocess
import sys

import dpal_jax.privacy

FORBIDDEN = ('jax', 'jaxlib', 'flax', 'optax')


def test_privacy_imports_no_jax():
  modules = sorted(m.name for m in pkgutil.walk_packages(dpal_jax.privacy.__path__, 'dpal_jax.privacy.'))
  assert 'dpal_jax.privacy.mechanisms.laplace_top_k' in modules and 'dpal_jax.privacy.events' in modules
  code = ('import importlib, sys\n'
          f'for name in {modules!r}: importlib.import_module(name)\n'
          f'print(sorted(m for m in sys.modules if m.split(".")[0] in {FORBIDDEN!r}))')
  result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
  assert result.stdout.strip() == '[]', result.stdout
