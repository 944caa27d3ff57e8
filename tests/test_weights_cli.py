"""`python -m dpal_jax.weights inspect PATH [--json]` on valid and invalid files."""

import json
import pickle
import subprocess
import sys

import numpy as np

from tests.models.test_nfnet_weights import official_f0_tree, write_flatmapping_pickle


def run_cli(*args):
  return subprocess.run([sys.executable, '-m', 'dpal_jax.weights', 'inspect', *args],
                        capture_output=True, text=True, timeout=300)


def test_inspect_prints_format_variant_leaves_params(tmp_path):
  path = tmp_path / 'F0_haiku.npz'
  write_flatmapping_pickle(path, official_f0_tree(np.random.default_rng(0)))
  result = run_cli(str(path), '--json')
  assert result.returncode == 0, result.stderr
  assert json.loads(result.stdout) == {'format': 'haiku-flatmapping-pickle', 'variant': 'F0',
                                       'leaves': 233, 'params': 71_489_284}
  text = run_cli(str(path))
  assert text.returncode == 0 and '71,489,284 parameters' in text.stdout


def test_invalid_files_exit_non_zero_with_the_reason(tmp_path):
  truncated = tmp_path / 'truncated.npz'
  truncated.write_bytes(pickle.dumps({'NFNet/~/linear': {'w': np.zeros(3)}})[:-5])
  wrong = tmp_path / 'resnet.pkl'
  wrong.write_bytes(pickle.dumps({'NFNet/~/linear': {'w': np.zeros((3072, 1000), np.float32)}}))
  for path, reason in [(truncated, 'not a valid NFNet weights file'),
                       (wrong, 'match no known variant'),
                       (tmp_path / 'missing.npz', 'no file')]:
    result = run_cli(str(path))
    assert result.returncode == 1 and reason in result.stderr, result.stderr  # dpal_jax.cli
    assert 'Traceback' not in result.stderr
