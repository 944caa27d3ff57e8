"""Accuracy per round on configs/oncology_breast_cancer.py: private entropy, random, and the fallback.

Arms, each over `--seeds` seeds (config.seed = s), ε = 2 all-inclusive per patient:
- entropy: private entropy queries (Laplace, ε_AL = 0.5 of the 2), first campaign on a fresh pool ledger;
- random: uniform selection (free), the whole ε = 2 for training;
- fallback: the SECOND campaign on the entropy arm's pool ledger, same config with al.fallback =
  'random': its candidates (the patients the first campaign did not label) already spent the query budget
  ε_AL on being scored, so every round selects at random, and training gets what the first campaign left.
Writes OUT/results.jsonl (one line per run: arm, seed, accuracy per phase, stopped, fallback rounds) and
OUT/table.md (mean ± sd per round). `--nonprivate`: the reference without privacy instead (arms entropy and
random, privacy.enabled = False), into OUT/nonprivate.jsonl and OUT/nonprivate.md.

  .venv/bin/python scripts/oncology_budgets.py --out=runs/oncology [--seeds=10] [--nonprivate]
"""

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from configs import oncology_breast_cancer  # pylint: disable=wrong-import-position
from dpal_jax import compile_cache  # pylint: disable=wrong-import-position
from dpal_jax import loops  # pylint: disable=wrong-import-position

ARMS = ('entropy', 'random', 'fallback')


def _config(arm: str, seed: int, ledger: str, private: bool = True):
  config = oncology_breast_cancer.get_config()
  config.seed = seed
  if not private:
    config.privacy.enabled = False
    config.privacy.epsilon_al = 0.0
    config.al.strategy = arm
    return config
  if arm == 'random':
    config.al.strategy = 'random'
  else:
    config.privacy.ledger_path = ledger
  if arm == 'fallback':
    config.al.fallback = 'random'
  return config


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', required=True)
  parser.add_argument('--seeds', type=int, default=10)
  parser.add_argument('--table', action='store_true', help='only write the table from the results')
  parser.add_argument('--nonprivate', action='store_true', help='the reference without privacy')
  args = parser.parse_args()
  name, arms = ('nonprivate', ('entropy', 'random')) if args.nonprivate else ('results', ARMS)
  path = os.path.join(args.out, f'{name}.jsonl')
  table = os.path.join(args.out, 'nonprivate.md' if args.nonprivate else 'table.md')
  if args.table:
    write_table(path, table)
    return
  os.makedirs(args.out, exist_ok=True)
  compile_cache.enable(None)   # as python -m dpal_jax.main does: later seeds load what the first compiled
  for seed in range(args.seeds):
    ledger = os.path.join(args.out, f'ledger_{seed}')
    for arm in arms:
      start = time.time()
      summary = loops.run(_config(arm, seed, ledger, private=not args.nonprivate),
                          os.path.join(args.out, f'{name}_{arm}_{seed}'))
      row = {'arm': arm, 'seed': seed, 'accuracy': [p['test_metric'] for p in summary['phases']],
             'num_labeled': [p['num_labeled'] for p in summary['phases']],
             'epsilon_max': max(summary['epsilon_per_cohort']),
             'budget': summary.get('budget'), 'seconds': time.time() - start}
      with open(path, 'a') as f:
        f.write(json.dumps(row) + '\n')
      print(json.dumps(row), flush=True)
  write_table(path, table)


def write_table(results: str, out: str) -> None:
  with open(results) as f:
    rows = [json.loads(line) for line in f]
  lines = ['| arm | ' + ' | '.join(f'round {k}' for k in range(6)) + ' | runs |', '|---' * 8 + '|']
  for arm in ARMS:
    acc = [r['accuracy'] for r in rows if r['arm'] == arm and len(r['accuracy']) == 6]
    if not acc:
      continue
    a = np.asarray(acc) * 100
    cells = [f'{m:.1f} ± {s:.1f}' for m, s in zip(a.mean(0), a.std(0, ddof=1) if len(a) > 1 else a.mean(0) * 0)]
    lines.append(f'| {arm} | ' + ' | '.join(cells) + f' | {len(a)} |')
  with open(out, 'w') as f:
    f.write('\n'.join(lines) + '\n')
  print('\n'.join(lines))


if __name__ == '__main__':
  main()
