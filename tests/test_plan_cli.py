import json
import os
import subprocess
import sys

import pytest

from configs import default

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(*args):
  return subprocess.run([sys.executable, '-m', 'dpal_jax.plan', *args], cwd=ROOT, capture_output=True,
                        text=True, timeout=600)


def test_json_output_is_plan_json():
  result = _run('--config=configs/default.py', '--config.privacy.mode=naive', '--json')
  assert result.returncode == 0, result.stderr
  plan = json.loads(result.stdout)
  assert plan['schema'] == 'dpal_jax.plan/1' and plan['mode'] == 'naive'
  cohorts = 1 + len(default.get_config().al.query_sizes)
  assert len(plan['phases']) == cohorts and len(plan['epsilon_per_cohort']) == cohorts


def test_table_output_names_phases_queries_and_cohorts():
  result = _run('--config=configs/default.py', '--config.privacy.mode=naive')
  assert result.returncode == 0, result.stderr
  for text in ('phase', 'query after phase 0: laplace', 'eps (composed)', 'eps (additive)'):
    assert text in result.stdout


@pytest.mark.parametrize('override, field', [
    ('--config.privacy.epsilon_al=9.0', 'privacy.epsilon_al'),
    ('--config.privacy.mode=bogus', 'privacy.mode'),
    ('--config.train.batch_size=5000', 'train.batch_size'),
])
def test_refusal_is_one_message_and_exit_code_2(override, field, tmp_path):
  result = subprocess.run([sys.executable, '-m', 'dpal_jax.plan', f'--config={ROOT}/configs/default.py',
                           override], cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env=os.environ | {'PYTHONPATH': ROOT})
  assert result.returncode == 2
  assert result.stdout == ''
  assert field in result.stderr and 'Traceback' not in result.stderr
  assert list(tmp_path.iterdir()) == []
