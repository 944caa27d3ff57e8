"""scripts/selection_fidelity.py at a tiny setting: the table, JSON and plot, one row per ε_q × mechanism,
exact top-k at ε_q = inf."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_sweep_writes_its_table_json_and_plot(tmp_path):
  out = tmp_path / 'fidelity'
  subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', 'selection_fidelity.py'), f'--out={out}',
                  '--dataset=digits', '--initial=100', '--k=20', '--epochs=1', '--repeats=2',
                  '--epsilons=0.5,inf'], check=True, cwd=ROOT, capture_output=True, timeout=120)
  result = json.loads((out / 'fidelity.json').read_text())
  rows = {(r['epsilon_q'], r['mechanism']): r for r in result['rows']}
  assert set(rows) == {(e, m) for e in (0.5, float('inf'))
                       for m in ('laplace', 'gaussian', 'subsampled_gaussian', 'random')}
  for name in ('laplace', 'gaussian', 'subsampled_gaussian'):
    assert rows[(float('inf'), name)]['fidelity_mean'] == 1.0
  assert 0 < rows[(0.5, 'subsampled_gaussian')]['params']['sample_rate'] <= 1
  assert all(0 <= r['fidelity_mean'] <= 1 and r['baseline'] == 2 * 20 / result['n'] for r in rows.values())
  assert (out / 'fidelity.md').read_text().count('\n| ') == len(rows) + 1
  assert (out / 'fidelity.png').stat().st_size > 1000
