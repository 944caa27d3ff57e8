"""launch.start(): the shared runtime flags reach jax.distributed and the compilation cache."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(__file__))
APP = '''
import json
from absl import app
from dpal_jax import launch
assert 'jax' not in __import__('sys').modules   # --help stays free of JAX

def main(argv):
  runtime = launch.start()
  import jax
  print(json.dumps({'processes': runtime.num_processes, 'cache': jax.config.jax_compilation_cache_dir,
                    'enabled': jax.config.jax_enable_compilation_cache}))
app.run(main)
'''


def run(*flags, env=None):
  result = subprocess.run([sys.executable, '-c', APP, *flags], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, JAX_PLATFORMS='cpu', **(env or {})))
  assert result.returncode == 0, result.stderr[-2000:]
  return json.loads(result.stdout.strip().splitlines()[-1])


def test_start_without_flags_is_one_process_with_the_default_cache(tmp_path):
  out = run(env={'XDG_CACHE_HOME': str(tmp_path), 'DPAL_JAX_COMPILE_CACHE': ''})
  assert out == {'processes': 1, 'cache': str(tmp_path / 'dpal_jax' / 'jax'), 'enabled': True}


def test_compile_cache_flag_sets_the_directory_or_turns_it_off(tmp_path):
  assert run(f'--compile_cache={tmp_path / "c"}')['cache'] == str(tmp_path / 'c')
  assert run('--compile_cache=off')['enabled'] is False
