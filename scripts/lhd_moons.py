"""Four Moons comparison of query strategies (docs/lhd.md): final test accuracy and the noisy share.

Runs the dpal loop of configs/lhd_moons.py stage by stage in this process (no workdir, no checkpoints)
for every strategy × seed and reports the test accuracy (mean ± sd over seeds) of the final model, trained
after the 7th query (1,420 labels), and of the model before it, trained after the 6th query (1,220
labels) — the one the paper's script evaluates: its 7th round trains, then queries, then tests that
round's network. Also the share of queried points from the noisy moon (the generator's mark: a benchmark
figure), and the wall time per run. `--strategies=all_labels` trains one network on all 30,000 pool
labels (100 epochs, then the 1-point "query" and 1 more): the accuracy no selection of labels can beat. `--private` runs DP-SGD training at privacy.epsilon = 8 and the private LHD score
(`lhd_score`) through the private top-k with ε_AL = 1 (k-means++ 'lhd' is refused there).

  python scripts/lhd_moons.py --strategies=lhd,confidence --seeds=0,1,2,3,4 --out=/tmp/lhd_moons
"""

import json
import os
import sys
import time

from absl import app
from absl import flags
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from configs import lhd_moons  # pylint: disable=wrong-import-position
from dpal_jax import config_schema  # pylint: disable=wrong-import-position
from dpal_jax.data import four_moons  # pylint: disable=wrong-import-position
from dpal_jax.loops import dpal  # pylint: disable=wrong-import-position
from dpal_jax.models import inference  # pylint: disable=wrong-import-position
from dpal_jax.rng import RunRandomness  # pylint: disable=wrong-import-position

ALL_LABELS = 'all_labels'
_STRATEGIES = flags.DEFINE_list('strategies', ['lhd', 'confidence'],
                                f'al.strategy names to compare; {ALL_LABELS!r}: train on every pool label')
_SEEDS = flags.DEFINE_list('seeds', ['0', '1', '2', '3', '4'], 'config.seed of each run')
_PRIVATE = flags.DEFINE_bool('private', False, 'DP-SGD at ε = 8 and private selection (ε_AL = 1)')
_EPOCHS = flags.DEFINE_integer('epochs', None, 'override train.epochs (default: the config\'s 100)')
_OUT = flags.DEFINE_string('out', None, 'folder for results.json (default: print only)')


def config_for(strategy: str, seed: int, private: bool, epochs: int | None):
  config = lhd_moons.get_config()
  config.seed = seed
  config.al.strategy = strategy
  if strategy == ALL_LABELS:   # the ceiling: every pool label, one network trained 100 + 1 epochs
    config.al.strategy = 'random'
    config.al.initial_size, config.al.query_sizes = four_moons.POOL_SIZE - 1, (1,)
    config.al.labeling_budget = four_moons.POOL_SIZE
    config.train.fresh_init = False
    config.train.epochs = (config.train.epochs, 1)
  if epochs is not None:
    config.train.epochs = epochs
  if private:
    config.privacy.enabled = True
    config.train.batching = 'poisson'
    config.privacy.epsilon = 8.0
    config.privacy.epsilon_al = 1.0
  config_schema.check(config)
  return config


def run_one(config) -> dict:
  """One run of the loop's stages; the test accuracy per phase and the noisy share of each query."""
  start = time.perf_counter()
  loop = dpal.Loop(config)
  state = loop.start(RunRandomness.create(config.seed))
  noisy = loop.dataset.noisy
  shares = []
  for stage in range(1, loop.num_stages + 1):
    before = len(state.pool.labeled)
    state, _ = loop.run_stage(state, stage)
    if stage % 2 == 0:
      picked = state.pool.labeled[before:]
      shares.append(float(noisy[picked].mean()))
  dataset = loop.dataset
  predicted = np.argmax(inference.predict(loop.trainer.model, state.train.params, dataset.x_test,
                                          batch_size=config.train.eval_batch_size), -1)
  per_moon = [float(np.mean(predicted[dataset.y_test == moon] == moon)) for moon in range(4)]
  return {'accuracy': [row['test_metric'] for row in state.history], 'noisy_share': shares,
          'final_accuracy_per_moon': per_moon,
          'final_accuracy': state.history[-1]['test_metric'],
          'accuracy_after_6_queries': state.history[-2]['test_metric'],
          'queried_noisy_share': float(np.mean(shares)), 'seconds': time.perf_counter() - start}


def main(argv):
  del argv
  results = {}
  for strategy in _STRATEGIES.value:
    runs = []
    for seed in map(int, _SEEDS.value):
      run = run_one(config_for(strategy, seed, _PRIVATE.value, _EPOCHS.value))
      runs.append(run)
      print(f'{strategy} seed {seed}: accuracy {run["final_accuracy"]:.4f} (moons 0-3: '
            f'{", ".join(f"{a:.3f}" for a in run["final_accuracy_per_moon"])}; after 6 queries '
            f'{run["accuracy_after_6_queries"]:.4f}), noisy share of the queries '
            f'{run["queried_noisy_share"]:.3f}, {run["seconds"]:.0f} s', flush=True)
    share = np.array([r['queried_noisy_share'] for r in runs])
    results[strategy] = {'runs': runs, 'noisy_share_mean': float(share.mean()),
                         'seconds_mean': float(np.mean([r['seconds'] for r in runs]))}
    for name, field in (('accuracy', 'final_accuracy'), ('accuracy_after_6', 'accuracy_after_6_queries')):
      acc = np.array([r[field] for r in runs])
      results[strategy] |= {f'{name}_mean': float(acc.mean()),
                            f'{name}_sd': float(acc.std(ddof=1)) if len(acc) > 1 else 0.0}
  print('strategy | test accuracy after 7 queries (mean ± sd) | after 6 queries | noisy share of queries | '
        's per run')
  for strategy, r in results.items():
    print(f'{strategy} | {100 * r["accuracy_mean"]:.1f} ± {100 * r["accuracy_sd"]:.1f} % | '
          f'{100 * r["accuracy_after_6_mean"]:.1f} ± {100 * r["accuracy_after_6_sd"]:.1f} % | '
          f'{100 * r["noisy_share_mean"]:.0f} % | {r["seconds_mean"]:.0f}')
  if _OUT.value:
    os.makedirs(_OUT.value, exist_ok=True)
    with open(os.path.join(_OUT.value, 'results.json'), 'w') as f:
      json.dump({'private': _PRIVATE.value, 'seeds': _SEEDS.value, 'results': results}, f, indent=1)


if __name__ == '__main__':
  app.run(main)
