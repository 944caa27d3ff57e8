import json
import os
import subprocess
import sys

import numpy as np
import pytest

from dpal_jax import bench
from configs.bench import mlp, resnet9_gn

ROOT = os.path.dirname(os.path.dirname(__file__))
TINY = '''
from configs.bench import mlp
def get_config():
  config = mlp.get_config()
  config.model.name = 'mlp'
  config.train.batch_size = 16
  config.train.physical_batch_size = 16
  config.bench.input_shape = (3, 3, 1)
  config.bench.pool_size = 64
  config.bench.steps = 2
  config.bench.warmup_steps = 1
  config.bench.query_batch_size = 32
  config.bench.score_candidates = 3000
  config.bench.score_batch_size = 512
  return config
'''
SCHEMA_FIELDS = {'schema', 'mode', 'device', 'model', 'input_shape', 'batch_size', 'dp_examples_per_s',
                 'nonprivate_examples_per_s', 'dp_over_nonprivate', 'compile_seconds',
                 'compile_seconds_cached', 'dp_peak_memory_bytes', 'nonprivate_peak_memory_bytes',
                 'dp_over_nonprivate_memory', 'query_examples_per_s', 'padding_fraction'}


def test_bench_configs_are_the_design_benchmarks():
  r9, m = resnet9_gn.get_config(), mlp.get_config()
  assert (r9.model.name, tuple(r9.bench.input_shape), r9.bench.num_classes, r9.train.batch_size) == (
      'resnet9_gn', (32, 32, 3), 10, 256)
  assert (m.model.name, tuple(m.bench.input_shape), m.bench.num_classes, m.train.batch_size) == (
      'mlp', (28, 28, 1), 10, 256)


def test_json_output_follows_the_schema(tmp_path):
  config_file = tmp_path / 'tiny.py'
  config_file.write_text(TINY)
  result = subprocess.run([sys.executable, '-m', 'dpal_jax.bench', f'--config={config_file}', '--json',
                           '--config.bench.opacus_dp_examples_per_s=100'],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-2000:]
  out = json.loads(result.stdout)
  assert SCHEMA_FIELDS <= set(out) and out['schema'] == bench.SCHEMA
  assert out['model'] == 'mlp' and out['input_shape'] == [3, 3, 1] and out['batch_size'] == 16
  assert out['dp_examples_per_s'] > 0 and out['nonprivate_examples_per_s'] > 0
  assert abs(out['dp_over_nonprivate'] - out['dp_examples_per_s'] / out['nonprivate_examples_per_s']) < 1e-9
  assert out['compile_seconds'] > 0 and out['compile_seconds_cached'] > 0
  assert 0 <= out['padding_fraction'] < 0.5
  assert out['dp_peak_memory_bytes'] > 0 and out['nonprivate_peak_memory_bytes'] > 0
  assert abs(out['dp_over_nonprivate_memory'] - out['dp_peak_memory_bytes'] /
             out['nonprivate_peak_memory_bytes']) < 1e-9
  assert out['grad_method'] == 'ghost'
  assert abs(out['dp_over_opacus_dp'] - out['dp_examples_per_s'] / 100) < 1e-9


def test_an_invalid_bench_config_exits_2_with_one_line(tmp_path):
  config_file = tmp_path / 'tiny.py'
  config_file.write_text(TINY)
  result = subprocess.run([sys.executable, '-m', 'dpal_jax.bench', f'--config={config_file}',
                           '--config.bench.steps=0'], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
  assert result.returncode == 2 and 'bench.steps' in result.stderr


def test_score_mode_streams_synthetic_candidates_through_pool_scores(tmp_path):
  config_file = tmp_path / 'tiny.py'
  config_file.write_text(TINY)
  result = subprocess.run([sys.executable, '-m', 'dpal_jax.bench', f'--config={config_file}', '--json',
                           '--config.bench.mode=score'], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
  assert result.returncode == 0, result.stderr[-2000:]
  out = json.loads(result.stdout)
  assert (out['mode'], out['score_candidates'], out['query_strategy']) == ('score', 3000, 'entropy')
  assert out['score_examples_per_s'] > 0 and out['scores_finite']
  assert out['score_host_peak_rss_bytes'] >= out['host_peak_rss_before_bytes'] > 0


def test_synthetic_rows_are_made_per_slice_and_repeatable():
  rows = bench.SyntheticRows(10, (2, 3), seed=4)
  assert len(rows) == 10 and rows.shape == (10, 2, 3) and rows.dtype == np.float32
  assert rows[0:4].shape == (4, 2, 3) and rows[8:12].shape == (2, 2, 3)
  np.testing.assert_array_equal(rows[0:4], rows[0:4])
  assert not np.allclose(rows[0:2], rows[2:4])



@pytest.mark.parametrize('config_module, grad_method, resolved', [
    (mlp, 'auto', 'ghost'),
    pytest.param(resnet9_gn, 'auto', 'conv', marks=pytest.mark.slow),   # ≈ 25 s each
    pytest.param(resnet9_gn, 'conv_two_pass', 'conv_two_pass', marks=pytest.mark.slow)])
def test_dp_step_memory_of_the_bench_models_is_within_the_goal(config_module, grad_method, resolved):
  """XLA's memory analysis (deterministic): the DP step of the bench MLP (ghost clipping + blocked
  noise) and of the bench ResNet9-GN with both conv paths takes at most
  GOAL_DP_OVER_NONPRIVATE_MEMORY × the non-private step's peak."""
  import jax
  from dpal_jax import models, optim
  from dpal_jax.dpsgd.trainer import Trainer
  config = config_module.get_config()
  x = np.zeros((8,) + tuple(config.bench.input_shape), np.float32)
  y = np.zeros(8, np.int32)
  peaks = {}
  for private in (True, False):
    trainer = Trainer(models.get(config.model.name, num_classes=10), optim.get('sgd', 0.1),
                      task='multiclass', clip_norm=1.0, grad_method=grad_method,
                      physical_batch_size=config.train.physical_batch_size)
    state = trainer.init(jax.random.key(0), x)
    trainer.precompile(state, x, y, [config.train.physical_batch_size], private=private)
    peaks[private] = trainer.peak_memory_bytes()
  assert trainer.grad_method == resolved
  assert peaks[True] <= bench.GOAL_DP_OVER_NONPRIVATE_MEMORY * peaks[False]
