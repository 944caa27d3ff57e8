"""`import dpal_jax` turns on XLA:CPU's memory-minimising scheduler through XLA_FLAGS (the ResNet9 DP
step's memory depends on it: docs/performance.md), keeping every flag the user set, and the user's own
setting of that flag wins."""

import os
import subprocess
import sys

import pytest

FLAG = '--xla_cpu_enable_concurrency_optimized_scheduler'
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _flags_after_import(xla_flags):
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
  if xla_flags is not None:
    env['XLA_FLAGS'] = xla_flags
  out = subprocess.run([sys.executable, '-c', 'import os, dpal_jax; print(os.environ["XLA_FLAGS"])'],
                       cwd=ROOT, env=env, capture_output=True, text=True, check=True)
  return out.stdout.strip()


@pytest.mark.parametrize('given, expected', [
    (None, f'{FLAG}=false'),
    ('--xla_force_host_platform_device_count=2', f'--xla_force_host_platform_device_count=2 {FLAG}=false'),
    (f'{FLAG}=true', f'{FLAG}=true'),
])
def test_the_scheduler_flag_is_added_unless_the_user_set_it(given, expected):
  assert _flags_after_import(given) == expected
