"""Accuracy at 1,500 labels on the original's small-pool setting: random selection against private query arms.

Each arm is one `python -m dpal_jax.main --config=configs/small_pool_mnist5k.py` run per seed (500 initial +
4 × 250 queried labels, E[B] = 250, δ = 1/1500, ε = 8 for every labeled example including its queries,
ε_AL = 2), differing only in al.strategy / privacy.query_mechanism, so every arm has the same training
schedule (the dpal loop; 'random' costs no query budget, so its training gets the whole ε). The arm
'entropy_nonprivate' (privacy.epsilon_al = inf) selects without noise: it is not DP for the candidates and
only shows what selection could add at best. Per arm: final test accuracy mean ± sd over the seeds, the
largest ε of any cohort (the run's ledger), and the mean per-query selection fidelity from the runs'
`al.log_fidelity` log lines (unnoised scores: a research diagnostic, not a DP release).

  .venv/bin/python scripts/small_pool_compare.py --out=runs/small_pool [--seeds=0,1,2] [--arms=random,laplace_entropy]

Writes OUT/compare.json and OUT/compare.md; each run's folder is OUT/<arm>/seed<k>. Runs one process at a
time (the machine is small); an arm/seed with a summary.json already there is not run again.
"""

import argparse
import json
import os
import re
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = 'configs/small_pool_mnist5k.py'

# arm: config overrides. 'laplace_entropy' is the config itself (the original's query).
ARMS = {
    'random': {'al.strategy': 'random'},
    'laplace_entropy': {},
    'laplace_uncertain': {'al.strategy': 'uncertain'},
    'gaussian_entropy': {'privacy.query_mechanism': 'gaussian'},
    'gaussian_uncertain': {'al.strategy': 'uncertain', 'privacy.query_mechanism': 'gaussian'},
    'subsampled_uncertain': {'al.strategy': 'uncertain', 'privacy.query_mechanism': 'subsampled_gaussian'},
    'laplace_entropy_half': {'al.strategy': 'entropy_half'},
    'entropy_nonprivate': {'privacy.epsilon_al': 'inf'},
    # The split chosen by the planner (privacy/split.py) among shares of a larger allowed query budget.
    'laplace_uncertain_auto6': {'al.strategy': 'uncertain', 'privacy.epsilon_al': 6.0,
                                'privacy.epsilon_al_split': 'auto'},
    'laplace_uncertain_eal6': {'al.strategy': 'uncertain', 'privacy.epsilon_al': 6.0},
}
_FIDELITY = re.compile(r'Selection fidelity ([0-9.]+) \(random ([0-9.]+)')


def _flags(argv):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', required=True)
  parser.add_argument('--seeds', default='0,1,2')
  parser.add_argument('--arms', default=','.join(ARMS))
  parser.add_argument('--extra', default='', help='more --config.x=y overrides for every arm, space-separated')
  return parser.parse_args(argv)


def run_one(arm, seed, flags):
  """(summary, per-query fidelities) of one run, reusing a finished run folder."""
  workdir = os.path.join(flags.out, arm, f'seed{seed}')
  log = os.path.join(workdir + '.log')
  summary_path = os.path.join(workdir, 'summary.json')
  if not os.path.exists(summary_path):
    os.makedirs(os.path.dirname(workdir), exist_ok=True)
    overrides = {**ARMS[arm], 'seed': seed, 'al.log_fidelity': True}
    cmd = [sys.executable, '-m', 'dpal_jax.main', f'--config={CONFIG}', f'--workdir={workdir}',
           *(f'--config.{k}={v}' for k, v in overrides.items()), *flags.extra.split()]
    with open(log, 'w') as f:
      proc = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
      raise RuntimeError(f'{arm} seed {seed} failed (exit {proc.returncode}); see {log}')
  with open(summary_path) as f:
    summary = json.load(f)
  with open(os.path.join(workdir, 'plan.json')) as f:
    summary['planned_epsilon_al'] = json.load(f)['epsilon_al']
  with open(log) as f:
    fidelity = [(float(a), float(b)) for a, b in _FIDELITY.findall(f.read())]
  return summary, fidelity


def compare(flags):
  seeds = [int(s) for s in flags.seeds.split(',')]
  rows = []
  for arm in flags.arms.split(','):
    if arm not in ARMS:
      raise SystemExit(f'--arms: unknown arm {arm!r}; choose from {", ".join(ARMS)}')
    accuracy, eps, fid, base, seconds, eal = [], [], [], [], [], set()
    for seed in seeds:
      summary, fidelity = run_one(arm, seed, flags)
      seconds.append(summary['wall_seconds'])
      accuracy.append(summary['final_test_metric'])
      eps.append(max(summary['epsilon_per_cohort']))
      eal.add(summary['planned_epsilon_al'])
      fid += [f for f, _ in fidelity]
      base += [b for _, b in fidelity]
      print(f'{arm} seed {seed}: accuracy {accuracy[-1]:.4f}, max ε {eps[-1]:.3f}', flush=True)
    rows.append({'arm': arm, 'overrides': ARMS[arm], 'seeds': seeds, 'accuracy': accuracy,
                 'accuracy_mean': float(np.mean(accuracy)), 'accuracy_sd': float(np.std(accuracy, ddof=1))
                 if len(accuracy) > 1 else 0.0, 'max_epsilon_per_cohort': float(max(eps)),
                 'epsilon_al': sorted(eal, key=lambda e: (e is None, e or 0)),
                 'fidelity_mean': float(np.mean(fid)) if fid else None,
                 'fidelity_random': float(np.mean(base)) if base else None,
                 'seconds_per_run': float(np.mean(seconds))})
  return {'config': CONFIG, 'extra': flags.extra, 'rows': rows}


def _table(result):
  random = next((r for r in result['rows'] if r['arm'] == 'random'), None)
  lines = [f"{result['config']} {result['extra']}".strip() + ': test accuracy at 1,500 labels, mean ± sd '
           'over seeds; fidelity = mean share of each query\'s picks in the exact top-2k of the arm\'s own '
           'unnoised scores (random: 2k/N) — for a 0/1 score (uncertain) ties count inside, so it is not comparable: '
           'fidelity against the entropy top-2k is in scripts/selection_fidelity.py --scores', '',
           '| arm | planned ε_AL | accuracy | Δ vs random | max ε per cohort | fidelity (random) | s per run |',
           '|---|---|---|---|---|---|---|']
  for r in result['rows']:
    delta = f"{100 * (r['accuracy_mean'] - random['accuracy_mean']):+.1f} pts" if random else '—'
    fid = ('—' if r['fidelity_mean'] is None
           else f"{r['fidelity_mean']:.3f} ({r['fidelity_random']:.3f})")
    eal = ', '.join('inf' if e is None else f'{e:g}' for e in r['epsilon_al'])
    lines.append(f"| {r['arm']} | {eal} | {r['accuracy_mean']:.4f} ± {r['accuracy_sd']:.4f} | {delta} | "
                 f"{r['max_epsilon_per_cohort']:.3f} | {fid} | {r['seconds_per_run']:.0f} |")
  return '\n'.join(lines) + '\n'


def main(argv=None):
  flags = _flags(argv)
  result = compare(flags)
  os.makedirs(flags.out, exist_ok=True)
  with open(os.path.join(flags.out, 'compare.json'), 'w') as f:
    json.dump(result, f, indent=1)
  table = _table(result)
  with open(os.path.join(flags.out, 'compare.md'), 'w') as f:
    f.write(table)
  print(table, end='')


if __name__ == '__main__':
  main()
