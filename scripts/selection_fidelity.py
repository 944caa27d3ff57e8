"""Selection fidelity of the private query mechanisms on the offline pool: ε_q × mechanism.

A model (the config's MLP) is trained briefly and non-privately on `--initial` random labeled examples;
its entropy scores of the other pool examples are fixed, and each mechanism selects k = `--k` of them
`--repeats` times at each per-round ε_q. Fidelity = share of the picks among the exact top-2k of the
same scores (`al.strategies.selection_fidelity`), against 2k/N for a uniform draw. Every mechanism
spends what T = `--rounds` Laplace rounds of ε_q spend together at δ (`for_budget(T·ε_q, T, δ)`);
'subsampled_gaussian' chooses its rate with the real q = k/N (`subsampled_top_k.choose`). ε_q = inf is
the exact top-k. A research diagnostic on unnoised scores: nothing here is a DP release.

  .venv/bin/python scripts/selection_fidelity.py --out=runs/fidelity [--dataset=mnist5k] [--repeats=20]

Writes OUT/fidelity.md (the table), OUT/fidelity.json and OUT/fidelity.png.
"""

import argparse
import json
import math
import os
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from configs import default  # pylint: disable=wrong-import-position
from dpal_jax.al import strategies  # pylint: disable=wrong-import-position
from dpal_jax.loops import common  # pylint: disable=wrong-import-position
from dpal_jax.privacy.mechanisms import top_k  # pylint: disable=wrong-import-position
from dpal_jax.privacy.mechanisms import subsampled_top_k  # pylint: disable=wrong-import-position
from dpal_jax.privacy.mechanisms.gaussian_top_k import GaussianTopK  # pylint: disable=wrong-import-position
from dpal_jax.privacy.mechanisms.laplace_top_k import LaplaceTopK  # pylint: disable=wrong-import-position

MECHANISMS = ('laplace', 'gaussian', 'subsampled_gaussian', 'random')


def _flags(argv):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', required=True, help='folder for fidelity.{md,json,png}')
  parser.add_argument('--dataset', default='mnist5k', choices=('mnist5k', 'digits'))
  parser.add_argument('--initial', type=int, default=500, help='labeled examples the model trains on')
  parser.add_argument('--k', type=int, default=250, help='picks per query')
  parser.add_argument('--epochs', type=int, default=10)
  parser.add_argument('--epsilons', default='0.1,0.5,2,inf', help='per-round ε_q, comma-separated')
  parser.add_argument('--rounds', type=int, default=4, help='T, for the Gaussian budget split')
  parser.add_argument('--delta', type=float, default=1 / 1500)
  parser.add_argument('--repeats', type=int, default=20)
  parser.add_argument('--seed', type=int, default=0)
  return parser.parse_args(argv)


def pool_scores(flags):
  """(entropy scores of the unlabeled pool, clamp Δ) from a model trained on `--initial` examples."""
  config = default.get_config()
  config.dataset.name = flags.dataset
  config.dataset.test_size = 297 if flags.dataset == 'digits' else 1000
  dataset = common.load_dataset(config)
  trainer = common.make_trainer(config, dataset)
  rng, key = np.random.default_rng(flags.seed), jax.random.key(flags.seed)
  order = rng.permutation(len(dataset.x_train))
  labeled, unlabeled = order[:flags.initial], order[flags.initial:]
  batch = min(config.train.batch_size, flags.initial)
  state = trainer.init(key, dataset.x_train[:1])
  state, _ = trainer.train_phase(
      state, dataset.x_train[labeled], dataset.y_train[labeled],
      sample_rates=np.full(len(labeled), batch / len(labeled)), noise_multiplier=0.0,
      steps=max(1, flags.epochs * len(labeled) // batch), expected_batch_size=batch, rng=rng, key=key,
      private=False, progress=False)
  entropy = strategies.get('entropy')
  scores = strategies.pool_scores(entropy, model=trainer.model, params=state.params,
                                  x=dataset.x_train[unlabeled], task=dataset.task, key=key,
                                  batch_size=config.al.query_batch_size)
  return scores, entropy.clamp


def mechanism(name, eps_q, flags, query_fraction):
  """The per-round mechanism `name` at ε_q (None: exact top-k; 'random': a uniform draw)."""
  if name == 'random':
    return 'random'
  if math.isinf(eps_q):
    return None
  total = eps_q * flags.rounds
  if name == 'laplace':
    return LaplaceTopK.for_budget(total, flags.rounds, flags.delta)
  if name == 'gaussian':
    return GaussianTopK.for_budget(total, flags.rounds, flags.delta)
  return subsampled_top_k.choose(total, flags.rounds, flags.delta, query_fraction=query_fraction)


def sweep(flags):
  scores, clamp = pool_scores(flags)
  n, k = len(scores), flags.k
  rng = np.random.default_rng(flags.seed + 1)
  rows = []
  for eps_q in (float(e) for e in flags.epsilons.split(',')):
    for name in MECHANISMS:
      mech = mechanism(name, eps_q, flags, k / n)
      draws = []
      for _ in range(flags.repeats):
        if mech == 'random':
          picks = rng.choice(n, size=k, replace=False)
        elif mech is None:
          picks = top_k.exact_top_k(scores, k)
        else:
          picks = mech.top_k(scores, k, clamp=clamp, rng=rng)
        draws.append(strategies.selection_fidelity(scores, picks)[0])
      params = {} if mech in (None, 'random') else mech.params()
      rows.append({'epsilon_q': eps_q, 'mechanism': name, 'params': params,
                   'fidelity_mean': float(np.mean(draws)), 'fidelity_sd': float(np.std(draws)),
                   'baseline': min(1.0, 2 * k / n)})
  return {'dataset': flags.dataset, 'initial': flags.initial, 'k': k, 'n': n, 'rounds': flags.rounds,
          'delta': flags.delta, 'repeats': flags.repeats, 'clamp': clamp, 'rows': rows}


def _table(result) -> str:
  lines = [f"{result['dataset']}: N = {result['n']} candidates, k = {result['k']}, "
           f"T = {result['rounds']}, δ = {result['delta']:.3g}, {result['repeats']} repeats; "
           f"random baseline 2k/N = {result['rows'][0]['baseline']:.3f}", '',
           '| ε_q | mechanism | parameters | fidelity (mean ± sd) |', '|---|---|---|---|']
  for row in result['rows']:
    params = ', '.join(f'{k} {v:.3g}' for k, v in row['params'].items()) or '—'
    lines.append(f"| {row['epsilon_q']:g} | {row['mechanism']} | {params} | "
                 f"{row['fidelity_mean']:.3f} ± {row['fidelity_sd']:.3f} |")
  return '\n'.join(lines) + '\n'


def _plot(result, path):
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  epsilons = sorted({r['epsilon_q'] for r in result['rows']})
  labels = [f'{e:g}' for e in epsilons]
  fig, ax = plt.subplots(figsize=(6, 4))
  for name in MECHANISMS:
    rows = {r['epsilon_q']: r for r in result['rows'] if r['mechanism'] == name}
    ax.errorbar(labels, [rows[e]['fidelity_mean'] for e in epsilons],
                yerr=[rows[e]['fidelity_sd'] for e in epsilons], marker='o', capsize=3, label=name)
  ax.set_xlabel('per-round ε_q')
  ax.set_ylabel('selection fidelity (share in exact top-2k)')
  ax.set_ylim(0, 1.05)
  ax.legend()
  ax.set_title(f"{result['dataset']}: k = {result['k']} of N = {result['n']}")
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def main(argv=None):
  flags = _flags(argv)
  start = time.perf_counter()
  result = sweep(flags)
  result['seconds'] = time.perf_counter() - start
  os.makedirs(flags.out, exist_ok=True)
  with open(os.path.join(flags.out, 'fidelity.json'), 'w') as f:
    json.dump(result, f, indent=1)
  table = _table(result)
  with open(os.path.join(flags.out, 'fidelity.md'), 'w') as f:
    f.write(table)
  _plot(result, os.path.join(flags.out, 'fidelity.png'))
  print(table, end='')


if __name__ == '__main__':
  main()
