"""scripts/selection_fidelity.py --scores: surrogate scores select, fidelity is against the entropy top-2k,
and the entropy rows are exactly those of the default run (the old output stays reproducible)."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = ['--dataset=digits', '--initial=100', '--k=20', '--epochs=1', '--repeats=2', '--epsilons=0.5,inf']


def _run(out, *extra):
  subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', 'selection_fidelity.py'), f'--out={out}',
                  *TINY, *extra], check=True, cwd=ROOT, capture_output=True, timeout=180)
  return json.loads((out / 'fidelity.json').read_text()), (out / 'fidelity.md').read_text()


@pytest.mark.slow   # two script runs (~20 s of CPU; minutes on the shared machine)
def test_surrogate_scores_beside_the_unchanged_entropy_rows(tmp_path):
  plain, plain_table = _run(tmp_path / 'plain')
  scored, table = _run(tmp_path / 'scored', '--scores=entropy,uncertain,entropy_half')
  assert 'scores' not in plain and '| score |' not in plain_table
  entropy_rows = [r for r in scored['rows'] if 'score' not in r]
  assert entropy_rows == plain['rows']   # same draws, same order: the default output is reproducible
  surrogate = {(r['score'], r['epsilon_q'], r['mechanism']): r for r in scored['rows'] if 'score' in r}
  assert set(surrogate) == {(s, e, m) for s in ('uncertain', 'entropy_half') for e in (0.5, float('inf'))
                            for m in ('laplace', 'gaussian', 'subsampled_gaussian')}
  assert all(0 <= r['fidelity_mean'] <= 1 for r in surrogate.values())
  # exact top-k of entropy clamped at ½ is the entropy top-k, up to ties at the clamp
  assert surrogate[('entropy_half', float('inf'), 'laplace')]['fidelity_mean'] > 0.5
  assert set(scored['ceiling']) == {'0.5', 'inf'} and scored['ceiling']['inf'] == 1.0
  assert 2 * 20 / scored['n'] < scored['ceiling']['0.5'] < 1
  assert table.count('\n| ') == len(scored['rows']) + 1 and 'ceiling' in table
