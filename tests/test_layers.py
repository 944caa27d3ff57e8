"""The layer rules of docs/architecture.md, checked on the source: no package imports a layer above it,
and `privacy/` (host math) imports nothing but the standard library, NumPy, SciPy, dp-accounting and the
layer below it. Function-level imports count too."""

import ast
import os
import sys

import pytest

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'dpal_jax')

# Each top-level module or package of dpal_jax, by layer; a layer may import its own and lower layers.
LAYERS = (
    ('errors', 'registry', 'validate'),
    ('privacy',),
    ('data', 'dpsgd', 'metrics', 'models', 'optim'),
    ('al', 'evaluation'),
    ('checkpointing', 'compile_cache', 'distributed', 'plots', 'rng', 'workdir'),
    ('audit', 'config_schema', 'loops', 'pate', 'psl'),
    ('bench', 'cli', 'gpu_check', 'launch', 'ledger', 'main', 'plan', 'weights'),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
# dp-accounting's own dependencies (scipy, absl logging) are host math too.
PRIVACY_MAY_IMPORT = {'numpy', 'scipy', 'absl', 'dp_accounting', 'dpal_jax'} | set(sys.stdlib_module_names)


def _modules():
  for root, _, files in os.walk(PACKAGE):
    for name in sorted(files):
      if name.endswith('.py'):
        path = os.path.join(root, name)
        yield os.path.relpath(path, os.path.dirname(PACKAGE)), path


def _imports(path):
  """(top-level package, dpal_jax part or None) of every import in the file."""
  tree = ast.parse(open(path).read(), path)
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      for alias in node.names:
        yield alias.name.split('.')
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      parts = node.module.split('.')
      if parts == ['dpal_jax']:
        for alias in node.names:
          yield ['dpal_jax', alias.name]
      else:
        yield parts


def _layer_of(relpath):
  """The layer name of a module; a package's `__main__.py` is an entry point."""
  parts = relpath[:-3].split(os.sep)
  if parts[-1] == '__main__':
    return 'main'
  return parts[1] if len(parts) > 1 else None


def test_every_module_has_a_layer():
  missing = {_layer_of(rel) for rel, _ in _modules()} - set(RANK) - {None, '__init__'}
  assert not missing, f'add {sorted(missing)} to LAYERS (and to docs/architecture.md)'


@pytest.mark.parametrize('relpath, path', list(_modules()))
def test_no_module_imports_a_layer_above_its_own(relpath, path):
  own = _layer_of(relpath)
  if own in (None, '__init__'):
    return
  for parts in _imports(path):
    if parts[0] == 'dpal_jax' and len(parts) > 1:
      assert RANK[parts[1]] <= RANK[own], f'{relpath} imports dpal_jax.{parts[1]}, a layer above {own}'
    if own == 'privacy':
      assert parts[0] in PRIVACY_MAY_IMPORT, f'{relpath} imports {".".join(parts)}: privacy/ is NumPy only'


def test_no_module_is_over_400_lines():
  long = {rel: n for rel, path in _modules() if (n := len(open(path).read().splitlines())) > 400}
  assert not long, long


def test_importing_any_module_starts_no_jax_backend():
  """A module-level JAX computation starts the backend at import: before `main` has quieted JAX's
  start-up logs (a bad config then prints more than its one error line) and before a multi-process
  run has joined (`jax.distributed.initialize` must come first)."""
  import subprocess  # pylint: disable=g-import-not-at-top
  entry_points = set(LAYERS[-1])   # they define their command's flags at import; each runs alone
  names = sorted('.'.join(rel[:-3].split(os.sep)).removesuffix('.__init__')
                 for rel, _ in _modules() if _layer_of(rel) not in entry_points | {'main'})
  code = ('import importlib, jax._src.xla_bridge as xb\n'
          f'for name in {names!r}:\n'
          '  importlib.import_module(name)\n'
          '  assert not xb._backends, f"importing {name} started a JAX backend"\n')
  result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=300,
                          cwd=os.path.dirname(PACKAGE))
  assert result.returncode == 0, result.stderr[-2000:]
