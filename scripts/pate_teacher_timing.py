"""Times n PATE teachers trained as one stacked model against n separate trainings of the same teachers.

  python scripts/pate_teacher_timing.py [--teachers=250] [--steps=50] [--batch=16] [--hidden=64] [--chunk=0]

Data: the embedded mnist5k pool (offline), dealt into n partitions by record. Both ways train the same
teachers (same keys, same partitions: `pate.teachers.train_one`); the separate way calls one jitted
single-teacher training n times (compiled once, reused). Prints one JSON line with, for each way, the
first call (compile included) and the best of `--repeats` warm calls, the two ways alternating, in wall
seconds and in this process's CPU seconds (all its threads; steadier than wall time when other jobs
share the cores), and the largest parameter difference.
"""

import argparse
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from dpal_jax import data  # pylint: disable=wrong-import-position
from dpal_jax import models  # pylint: disable=wrong-import-position
from dpal_jax.pate import partition  # pylint: disable=wrong-import-position
from dpal_jax.pate import teachers  # pylint: disable=wrong-import-position


def _seconds(fn):
  """((wall, cpu) seconds, result) of fn()."""
  wall, cpu = time.perf_counter(), time.process_time()
  out = jax.block_until_ready(fn())
  return (time.perf_counter() - wall, time.process_time() - cpu), out


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--teachers', type=int, default=250)
  parser.add_argument('--steps', type=int, default=50)
  parser.add_argument('--batch', type=int, default=16)
  parser.add_argument('--hidden', type=int, default=64)
  parser.add_argument('--chunk', type=int, default=0)
  parser.add_argument('--repeats', type=int, default=3)
  args = parser.parse_args()
  dataset = data.load('mnist5k', seed=0)
  x, y = dataset.x_train, dataset.y_train
  parts = partition.split(len(x), args.teachers, seed=0)
  model = models.get('mlp', num_classes=10, hidden=(args.hidden,))
  optimizer = optax.adam(3e-3)
  init_key, train_key = jax.random.key(0), jax.random.key(1)
  stacked = teachers.StackedTeachers(model, optimizer, steps=args.steps, batch_size=args.batch,
                                     chunk=args.chunk or None)
  stacked_cold, params = _seconds(lambda: stacked.train(init_key, train_key, x, y, parts))

  one = jax.jit(teachers.train_one, static_argnums=(0, 1, 2, 3))
  index, _ = parts.members()
  xs, ys, sample = jnp.asarray(x), jnp.asarray(y), jnp.asarray(x[:1])

  def separately():
    out = []
    for t in range(args.teachers):
      p0 = teachers.init_one(model, jax.random.fold_in(init_key, t), sample)
      out.append(one(model, optimizer, args.steps, args.batch, p0, jax.random.fold_in(train_key, t), xs,
                     ys, jnp.asarray(index[t]), jnp.int32(parts.sizes[t])))
    return out
  separate_cold, singles = _seconds(separately)
  warm = {'stacked': [], 'separate': []}
  for _ in range(args.repeats):
    warm['stacked'].append(_seconds(lambda: stacked.train(init_key, train_key, x, y, parts))[0])
    warm['separate'].append(_seconds(separately)[0])
  best = {way: [min(t[i] for t in times) for i in (0, 1)] for way, times in warm.items()}
  difference = max(float(jnp.max(jnp.abs(s[t] - p))) for t, single in enumerate(singles)
                   for s, p in zip(jax.tree.leaves(params), jax.tree.leaves(single)))
  print(json.dumps({
      'teachers': args.teachers, 'steps': args.steps, 'batch': args.batch, 'hidden': args.hidden,
      'chunk': args.chunk, 'backend': jax.default_backend(), 'cpus': os.cpu_count(),
      'load_average_1min': os.getloadavg()[0],
      'stacked': {'first_wall': stacked_cold[0], 'warm_wall': best['stacked'][0],
                  'warm_cpu': best['stacked'][1]},
      'separate': {'first_wall': separate_cold[0], 'warm_wall': best['separate'][0],
                   'warm_cpu': best['separate'][1]},
      'speedup_warm_wall': best['separate'][0] / best['stacked'][0],
      'speedup_warm_cpu': best['separate'][1] / best['stacked'][1], 'max_abs_difference': difference}))


if __name__ == '__main__':
  main()
