"""Accuracy against labels on mnist5k: PSL (loop psl) beside entropy, BALD and random (loop dpal), each
non-private and at ε = 8 all-inclusive, over seeds; mean ± sd per phase, ε recomputed from ledger.json.

  python scripts/psl_compare.py --out /tmp/psl_compare [--seeds 0 1 2] [--methods psl entropy bald random]
      [--settings nonprivate eps8]

Every run is `python -m dpal_jax.main` in its own workdir under OUT/runs (a finished one is not run again,
so the script resumes). PSL runs configs/psl_mnist5k.py; the others run configs/mlp_pixels.py with the same
labels (500 initial, 3 queries of 250) over the whole pool, while PSL's candidates are the unprotected half
(docs/psl.md §6). Non-private: privacy.enabled = False and privacy.epsilon_al = inf (PSL then uses the
source's summed-KL score, al.strategy = 'peer_study'). The ε column is the largest over the ledger's units
(every labeled cohort and the never-labeled), each composed from ledger.json's raw events by a fresh
dp-accounting RDP accountant; PSL's protected examples are outside it (no DP guarantee, docs/psl.md §5).
Writes OUT/table.md and OUT/results.json.
"""

import argparse
import json
import math
import os
import subprocess
import sys

import dp_accounting
import numpy as np
from absl import logging as absl_logging
from dp_accounting import rdp

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LABELS = ['--config.al.initial_size=500', '--config.al.query_sizes=(250,250,250)',
          '--config.al.labeling_budget=1250']
NON_PRIVATE = ['--config.privacy.enabled=False', '--config.privacy.epsilon_al=inf']


def run_args(method: str, setting: str, seed: int) -> list[str]:
  """The main.py flags of one run."""
  if method == 'psl':
    args = ['--config=configs/psl_mnist5k.py']
    if setting == 'nonprivate':
      args += ['--config.al.strategy=peer_study']
  else:
    args = ['--config=configs/mlp_pixels.py', f'--config.al.strategy={method}', *LABELS]
  return args + (NON_PRIVATE if setting == 'nonprivate' else []) + [f'--config.seed={seed}']


def unit_epsilons(ledger: dict) -> list[float]:
  """ε at ledger['delta'] of every unit of a ledger.json (schema dpal_jax.ledger/1), recomputed from its
  raw events alone: the queries it was scored in while unlabeled, then its DP-SGD phases."""
  if ledger.get('target_epsilon') is None:
    return [math.inf] * len(ledger['labeled_at'])
  out = []
  for slot, labeled_at in enumerate(ledger['labeled_at']):
    accountant = rdp.RdpAccountant()
    for query in ledger['queries']:
      if labeled_at is None or labeled_at > query['after_phase']:
        if query['mechanism'] != 'laplace':
          raise ValueError(f'mechanism {query["mechanism"]!r}: only laplace is recomputed here')
        accountant.compose(dp_accounting.LaplaceDpEvent(1 / query['epsilon']))
    for phase in ledger['phases']:
      rates = phase['sample_rates']
      if slot < len(rates) and rates[slot] > 0:
        accountant.compose(dp_accounting.PoissonSampledDpEvent(
            rates[slot], dp_accounting.GaussianDpEvent(phase['noise_multiplier'])), phase['steps'])
    out.append(accountant.get_epsilon(ledger['delta']))
  return out


def aggregate(results: list[dict]) -> dict:
  """{(setting, method): {'labels': [...], 'mean': [...], 'sd': [...], 'epsilon': max, 'seeds': n}}."""
  table = {}
  for key in sorted({(r['setting'], r['method']) for r in results}):
    runs = [r for r in results if (r['setting'], r['method']) == key]
    curves = np.array([r['accuracy'] for r in runs])
    table[key] = {'labels': runs[0]['labels'], 'mean': curves.mean(0).tolist(),
                  'sd': (curves.std(0, ddof=1) if len(runs) > 1 else np.zeros(curves.shape[1])).tolist(),
                  'epsilon': max(r['epsilon'] for r in runs), 'seeds': len(runs)}
  return table


def markdown(table: dict) -> str:
  labels = next(iter(table.values()))['labels']
  lines = ['| setting | method | ε (max, recomputed) | seeds | ' + ' | '.join(f'{n} labels' for n in labels)
           + ' |', '|---|---|---|---|' + '---|' * len(labels)]
  for (setting, method), row in table.items():
    eps = '∞' if math.isinf(row['epsilon']) else f'{row["epsilon"]:.3f}'
    cells = ' | '.join(f'{m:.3f} ± {s:.3f}' for m, s in zip(row['mean'], row['sd']))
    lines.append(f'| {setting} | {method} | {eps} | {row["seeds"]} | {cells} |')
  return '\n'.join(lines) + '\n'


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--out', required=True)
  parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
  parser.add_argument('--methods', nargs='+', default=['psl', 'entropy', 'bald', 'random'])
  parser.add_argument('--settings', nargs='+', default=['nonprivate', 'eps8'])
  flags = parser.parse_args()
  absl_logging.set_verbosity(absl_logging.ERROR)   # dp-accounting's per-order convergence warnings
  results = []
  for seed in flags.seeds:
    for setting in flags.settings:
      for method in flags.methods:
        workdir = os.path.join(flags.out, 'runs', f'{setting}_{method}_s{seed}')
        if not os.path.exists(os.path.join(workdir, 'summary.json')):
          done = subprocess.run([sys.executable, '-m', 'dpal_jax.main', *run_args(method, setting, seed),
                                 f'--workdir={workdir}'], cwd=REPO, capture_output=True, text=True)
          if done.returncode:
            sys.exit(f'{workdir} failed:\n{done.stderr[-3000:]}')
        with open(os.path.join(workdir, 'summary.json')) as f:
          summary = json.load(f)
        with open(os.path.join(workdir, 'ledger.json')) as f:
          epsilon = max(unit_epsilons(json.load(f)))
        results.append({'setting': setting, 'method': method, 'seed': seed, 'epsilon': epsilon,
                        'labels': [p['num_labeled'] for p in summary['phases']],
                        'accuracy': [p['test_metric'] for p in summary['phases']],
                        'wall_seconds': summary['wall_seconds']})
        print(f'{setting} {method} seed {seed}: final {results[-1]["accuracy"][-1]:.4f}, ε {epsilon:.3f}, '
              f'{summary["wall_seconds"]:.0f} s', flush=True)
  table = aggregate(results)
  text = markdown(table)
  with open(os.path.join(flags.out, 'table.md'), 'w') as f:
    f.write(text)
  with open(os.path.join(flags.out, 'results.json'), 'w') as f:
    json.dump({'runs': results, 'table': [{'setting': s, 'method': m, **row}
                                          for (s, m), row in table.items()]}, f, indent=1)
  print(text)


if __name__ == '__main__':
  main()
