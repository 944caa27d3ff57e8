"""Selection fidelity of the private query mechanisms on the offline pool: ε_q × mechanism.

A model (the config's MLP) is trained briefly and non-privately on `--initial` random labeled examples;
its entropy scores of the other pool examples are fixed, and each mechanism selects k = `--k` of them
`--repeats` times at each per-round ε_q. Fidelity = share of the picks among the exact top-2k of the
same scores (`al.strategies.selection_fidelity`), against 2k/N for a uniform draw. Every mechanism
spends what T = `--rounds` Laplace rounds of ε_q spend together at δ (`for_budget(T·ε_q, T, δ)`);
'subsampled_gaussian' chooses its rate with the real q = k/N (`subsampled_top_k.choose`). ε_q = inf is
the exact top-k. A research diagnostic on unnoised scores: nothing here is a DP release.

`--scores` adds surrogate scores designed for private selection (al/private_scores.py, docs/selection.md):
each mechanism then selects on the surrogate (its own clamp Δ), but fidelity is always measured against
the exact top-2k of the ORIGINAL entropy scores, the selection the surrogate stands in for. With more
than the default score the table gains a score column and the ceiling `private_scores.fidelity_ceiling`
of each ε_q (pure ε_q-DP per candidate); the default (`--scores=entropy`) writes the table it always did.

  .venv/bin/python scripts/selection_fidelity.py --out=runs/fidelity [--dataset=mnist5k] [--repeats=20]
  .venv/bin/python scripts/selection_fidelity.py --out=runs/fidelity_scores \
      --scores=entropy,uncertain,no_majority,entropy_half,margin

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

from configs import mlp_pixels  # pylint: disable=wrong-import-position
from dpal_jax.al import private_scores  # pylint: disable=wrong-import-position
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
  parser.add_argument('--scores', default='entropy',
                      help='al.strategy scores the mechanisms select on, comma-separated; entropy first')
  return parser.parse_args(argv)


def pool_scores(flags, names=('entropy',)):
  """{name: (scores of the unlabeled pool, clamp Δ)} from a model trained on `--initial` examples."""
  config = mlp_pixels.get_config()
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
  out = {}
  for name in names:
    strategy = strategies.get(name)
    out[name] = (strategies.pool_scores(strategy, model=trainer.model, params=state.params,
                                        x=dataset.x_train[unlabeled], task=dataset.task, key=key,
                                        batch_size=config.al.query_batch_size), strategy.clamp)
  return out


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
  names = flags.scores.split(',')
  if names[0] != 'entropy':
    raise SystemExit('--scores must start with entropy: fidelity is measured against its top-2k')
  scored = pool_scores(flags, names)
  scores, clamp = scored['entropy']   # the reference: fidelity is against its exact top-2k
  n, k = len(scores), flags.k
  rng = np.random.default_rng(flags.seed + 1)
  rows = []
  for score_name in names:   # entropy first: its rows draw exactly what the script always drew
    rows += _score_rows(score_name, *scored[score_name], scores, flags, rng)
  result = {'dataset': flags.dataset, 'initial': flags.initial, 'k': k, 'n': n, 'rounds': flags.rounds,
            'delta': flags.delta, 'repeats': flags.repeats, 'clamp': clamp, 'rows': rows}
  if len(names) > 1:
    result['scores'] = names
    result['ceiling'] = {e: private_scores.fidelity_ceiling(float(e), k, n)
                         for e in flags.epsilons.split(',')}
  return result


def _score_rows(score_name, selected_on, clamp, scores, flags, rng):
  """The rows of mechanisms selecting on `selected_on` (clamp Δ), fidelity against the entropy `scores`."""
  n, k = len(scores), flags.k
  rows = []
  for eps_q in (float(e) for e in flags.epsilons.split(',')):
    for name in MECHANISMS:
      if name == 'random' and score_name != 'entropy':
        continue   # a uniform draw reads no score: one random row per ε_q is enough
      mech = mechanism(name, eps_q, flags, k / n)
      draws = []
      for _ in range(flags.repeats):
        if mech == 'random':
          picks = rng.choice(n, size=k, replace=False)
        elif mech is None:
          picks = top_k.exact_top_k(selected_on, k)
        else:
          picks = mech.top_k(selected_on, k, clamp=clamp, rng=rng)
        draws.append(strategies.selection_fidelity(scores, picks)[0])
      params = {} if mech in (None, 'random') else mech.params()
      row = {'epsilon_q': eps_q, 'mechanism': name, 'params': params,
             'fidelity_mean': float(np.mean(draws)), 'fidelity_sd': float(np.std(draws)),
             'baseline': min(1.0, 2 * k / n)}
      if score_name != 'entropy':
        row['score'] = score_name
      rows.append(row)
  return rows


def _table(result) -> str:
  lines = [f"{result['dataset']}: N = {result['n']} candidates, k = {result['k']}, "
           f"T = {result['rounds']}, δ = {result['delta']:.3g}, {result['repeats']} repeats; "
           f"random baseline 2k/N = {result['rows'][0]['baseline']:.3f}", '',
           '| ε_q | mechanism | parameters | fidelity (mean ± sd) |', '|---|---|---|---|']
  if 'scores' in result:   # surrogate scores: a score column, fidelity against the entropy top-2k
    lines[-2:] = ['| ε_q | score | mechanism | parameters | fidelity vs entropy top-2k (mean ± sd) |',
                  '|---|---|---|---|---|']
  for row in result['rows']:
    params = ', '.join(f'{k} {v:.3g}' for k, v in row['params'].items()) or '—'
    score = f" {row.get('score', 'entropy')} |" if 'scores' in result else ''
    lines.append(f"| {row['epsilon_q']:g} |{score} {row['mechanism']} | {params} | "
                 f"{row['fidelity_mean']:.3f} ± {row['fidelity_sd']:.3f} |")
  if 'scores' in result:
    lines += ['', 'ceiling of any pure ε_q-DP per-candidate top-k (private_scores.fidelity_ceiling): '
              + ', '.join(f'ε_q {e}: {c:.3f}' for e, c in result['ceiling'].items())]
  return '\n'.join(lines) + '\n'


def _plot(result, path):
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  epsilons = sorted({r['epsilon_q'] for r in result['rows']})
  labels = [f'{e:g}' for e in epsilons]
  fig, ax = plt.subplots(figsize=(6, 4))
  for score in result.get('scores', ('entropy',)):
    for name in MECHANISMS:
      rows = {r['epsilon_q']: r for r in result['rows']
              if r['mechanism'] == name and r.get('score', 'entropy') == score}
      if not rows:
        continue
      label = name if score == 'entropy' else f'{score} / {name}'
      ax.errorbar(labels, [rows[e]['fidelity_mean'] for e in epsilons],
                  yerr=[rows[e]['fidelity_sd'] for e in epsilons], marker='o', capsize=3, label=label)
  if 'ceiling' in result:
    ceiling = {float(e): c for e, c in result['ceiling'].items()}
    ax.plot(labels, [ceiling[e] for e in epsilons], 'k--', label='ceiling (pure ε_q)')
  ax.set_xlabel('per-round ε_q')
  ax.set_ylabel('selection fidelity (share in exact top-2k)')
  ax.set_ylim(0, 1.05)
  ax.legend(fontsize=6 if 'scores' in result else None)
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
