"""scripts/gpu_check.sh on CPU with GPU_CHECK_TINY=1: the plumbing (every section, one JSON), not figures.

The whole script is slow on a shared 2-core CPU (≈ 2 minutes, most of it compiling the tiny NFNet's
per-example gradients); its parts are checked here quickly.
"""

import json
import os
import subprocess
import sys

import pytest

from dpal_jax import gpu_check

ROOT = os.path.dirname(os.path.dirname(__file__))


@pytest.mark.slow
def test_tiny_gpu_check_writes_one_json_with_every_section(tmp_path):
  out = tmp_path / 'check.json'
  env = dict(os.environ, GPU_CHECK_TINY='1', PYTHON=sys.executable, JAX_PLATFORMS='cpu')
  result = subprocess.run(['bash', 'scripts/gpu_check.sh', str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  assert json.loads(result.stdout.strip().splitlines()[-1])['dp_step_agrees_with_cpu'] is True
  check = json.loads(out.read_text())
  assert check['schema'] == gpu_check.SCHEMA and check['tiny'] is True and check['device'] == 'cpu'
  assert set(check['bench']) == {'mlp', 'cnn'}
  for figures in check['bench'].values():
    assert figures['dp_examples_per_s'] > 0 and figures['dp_over_nonprivate_memory'] > 0
  assert [r['model'] for r in check['dp_step_vs_cpu']] == ['mlp', 'cnn']
  assert all(r['agree'] and r['max_abs_diff'] == 0.0 for r in check['dp_step_vs_cpu'])  # CPU vs CPU
  nfnet = check['nfnet_f0_dp']
  assert nfnet['image_size'] == 32 and nfnet['examples_per_s'] > 0 and nfnet['peak_memory_bytes'] > 0


def test_dp_step_on_the_default_device_is_compared_with_the_cpu():
  check = gpu_check.dp_step_vs_cpu('mlp', (4, 4, 1), 8)
  assert check['agree'] and check['max_abs_diff'] == 0.0 and check['grad_method'] == 'ghost'


def test_tiny_settings_shrink_every_section():
  configs = gpu_check._bench_configs(tiny=True)
  assert [c.model.name for c in configs] == ['mlp', 'cnn']
  assert all(c.train.batch_size == 16 and c.bench.pool_size == 64 for c in configs)
  full = gpu_check._bench_configs(tiny=False)
  assert [c.model.name for c in full] == ['mlp', 'resnet9_gn']
  assert gpu_check._settings(False)['nfnet']['image_size'] == 192
