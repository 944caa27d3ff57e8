"""Throughput of the DP-SGD engine on synthetic data.

  python -m dpal_jax.bench --config=configs/bench/resnet9_gn.py [--json] [--config.bench.steps=5]

Logical batches are real Poisson batches at E[B] = train.batch_size: a synthetic pool of
`bench.pool_size` rows, every row sampled at rate batch_size / pool_size, padded and chunked exactly
as in training. Each logical batch is timed to completion; batches that compiled a new chunk shape are
not timed (compile time is reported on its own), the first `bench.warmup_steps` batches are dropped,
and the median of realised-rows / seconds over `bench.steps` timed batches is reported, for the DP step
and for the non-private step with the same sampling.

Compile time is measured on a cold, temporary persistent cache (`compile_seconds`), then again for a
fresh trainer of the same shapes, which loads them from that cache (`compile_seconds_cached`: what a
second run of the same config pays). Peak device memory of the DP and the non-private step comes from
XLA's memory analysis of their compiled executables. Query throughput runs the experiment's own scoring
path (`al.strategies.pool_scores`, strategy `bench.query_strategy`).

`bench.mode = 'score'` (configs/bench/score_1m.py) measures only pool scoring at scale: `pool_scores` over
`bench.score_candidates` synthetic rows generated batch by batch, so memory is a few batches plus one
score per candidate; it reports examples/s and peak host RSS (and device peak where the backend
reports one; on CPU device buffers are host memory, counted in the RSS).
"""

import json
import math
import resource
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags
from ml_collections import config_flags

from dpal_jax import cli
from dpal_jax import compile_cache, errors, models, optim, validate
from dpal_jax.al import strategies
from dpal_jax.dpsgd import sampler
from dpal_jax.dpsgd.trainer import Trainer

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Bench config file.', lock_config=True)
_JSON = flags.DEFINE_bool('json', False, 'Print one JSON object (schema dpal_jax.bench/1).')

SCHEMA = 'dpal_jax.bench/1'
GOAL_DP_OVER_NONPRIVATE = 0.5
GOAL_DP_OVER_NONPRIVATE_MEMORY = 1.2
MODES = ('train', 'score')
PADDING_DRAWS = 2000


def _sampler(trainer, rates, config, rng) -> sampler.PoissonSampler:
  """The sampler `Trainer.train_phase` would use at E[B] = train.batch_size."""
  multiple = trainer.pad_multiple or sampler.choose_pad_multiple(
      config.train.batch_size, trainer.physical_batch_size, trainer.num_devices)
  return sampler.PoissonSampler(rates, physical_batch_size=trainer.physical_batch_size,
                                pad_multiple=multiple, rng=rng)


def _time_training(trainer, x, y, rates, config, private: bool, rng, key) -> dict:
  """Median examples/s over `bench.steps` timed logical batches.

  A batch during which a new chunk shape was compiled is not timed (compiles overlap with running
  chunks, so subtracting their duration would overstate the speed); drawing goes on until enough
  compile-free batches were timed. Compile time is reported on its own.
  """
  state = trainer.init(key, x[:1])
  draw = _sampler(trainer, rates, config, rng)
  compiles, compile_seconds = trainer.compiles, trainer.compile_seconds
  rates_seen, chunk_sizes = [], set()
  max_draws = config.bench.warmup_steps + 4 * config.bench.steps + 16
  for step in range(max_draws):
    if len(rates_seen) == config.bench.steps:
      break
    batch = draw.draw()
    chunk_sizes.update(len(c) for c in batch.chunks)
    compiles_before = trainer.compiles
    start = time.perf_counter()
    state, loss_sum, _ = trainer.logical_step(
        state, x, y, batch, key=jax.random.fold_in(key, step),
        noise_multiplier=config.bench.noise_multiplier,
        expected_batch_size=config.train.batch_size, private=private)
    jax.block_until_ready((state, loss_sum))
    seconds = time.perf_counter() - start
    if step >= config.bench.warmup_steps and trainer.compiles == compiles_before:
      rates_seen.append(batch.size / seconds)
  if not rates_seen:
    raise RuntimeError(f'no compile-free logical batch in {max_draws} draws; raise bench.steps')
  return {'examples_per_s': statistics.median(rates_seen),
          'compile_seconds': trainer.compile_seconds - compile_seconds,
          'compiles': trainer.compiles - compiles, 'chunk_sizes': chunk_sizes,
          'peak_memory_bytes': trainer.peak_memory_bytes()}


def _cached_compile_seconds(trainer, x, y, key, chunk_sizes) -> float:
  """Compile seconds of a fresh trainer for the chunk shapes another one compiled (and cached)."""
  state = trainer.init(key, x[:1])
  trainer.precompile(state, x, y, chunk_sizes, private=True)
  return trainer.compile_seconds


def _padding_fraction(rates, config, trainer, rng) -> float:
  """Padded share of the rows over many sampled logical batches (host only, no training)."""
  draw = _sampler(trainer, rates, config, rng)
  batches = [draw.draw() for _ in range(PADDING_DRAWS)]
  return 1 - sum(b.size for b in batches) / sum(b.padded_size for b in batches)


def _query_throughput(config, model, params, x, repeats: int) -> float:
  """Examples/s of `al.strategies.pool_scores` (the experiment's scoring path), compile excluded."""
  def score():
    return strategies.pool_scores(strategies.get(config.bench.query_strategy), model=model,
                                  params=params, x=x, task='multiclass', key=jax.random.key(0),
                                  batch_size=config.bench.query_batch_size)
  score()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    score()
    times.append(time.perf_counter() - start)
  return len(x) / statistics.median(times)


class SyntheticRows:
  """`n` rows of standard-normal features, made on demand from (seed, first row): a pool of any size
  that never exists in memory (slices only)."""

  def __init__(self, n: int, shape: tuple, seed: int):
    self.shape, self.dtype, self.seed = (n,) + tuple(shape), np.dtype(np.float32), seed

  def __len__(self):
    return self.shape[0]

  def __getitem__(self, rows: slice) -> np.ndarray:
    start, stop, _ = rows.indices(len(self))
    rng = np.random.default_rng([self.seed, start])
    return rng.standard_normal((max(stop - start, 0),) + self.shape[1:], dtype=np.float32)


def _peak_rss_bytes() -> int:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _device_peak_bytes() -> int | None:
  stats = jax.local_devices()[0].memory_stats()
  return None if not stats else stats.get('peak_bytes_in_use')


def run_scoring(config) -> dict:
  """Scores `bench.score_candidates` synthetic rows through `pool_scores`; examples/s, peak memory."""
  bench = config.bench
  model = models.get(config.model.name, num_classes=bench.num_classes, dropout=config.model.dropout)
  shape = tuple(bench.input_shape)
  params = model.init(jax.random.key(bench.seed), np.zeros((1,) + shape, np.float32))['params']
  warm = SyntheticRows(bench.score_batch_size, shape, bench.seed)
  strategy = strategies.get(bench.query_strategy)
  kwargs = dict(model=model, params=params, task='multiclass', key=jax.random.key(bench.seed),
                batch_size=bench.score_batch_size)
  jax.block_until_ready(strategies.pool_scores(strategy, x=warm, **kwargs))  # compile
  rss_before = _peak_rss_bytes()
  start = time.perf_counter()
  scores = strategies.pool_scores(strategy, x=SyntheticRows(bench.score_candidates, shape, bench.seed),
                                  **kwargs)
  seconds = time.perf_counter() - start
  return {
      'schema': SCHEMA, 'mode': 'score', 'device': jax.default_backend(), 'model': config.model.name,
      'input_shape': list(shape), 'query_strategy': bench.query_strategy,
      'score_candidates': len(scores), 'score_batch_size': bench.score_batch_size,
      'score_examples_per_s': len(scores) / seconds, 'score_seconds': seconds,
      'score_host_peak_rss_bytes': _peak_rss_bytes(), 'host_peak_rss_before_bytes': rss_before,
      'score_device_peak_bytes': _device_peak_bytes(), 'num_local_devices': jax.local_device_count(),
      'scores_finite': bool(np.all(np.isfinite(scores))),
  }


def run(config) -> dict:
  """Measures the bench of `config`; returns the dict printed by `--json`."""
  bench = config.bench
  if validate.choice('bench.mode', bench.mode, MODES) == 'score':
    return run_scoring(config)
  if bench.steps < 1 or bench.pool_size < config.train.batch_size:
    raise errors.ConfigError(
        f'bench.steps ({bench.steps}) must be ≥ 1 and bench.pool_size ({bench.pool_size}) ≥ '
        f'train.batch_size ({config.train.batch_size})')
  rng = np.random.default_rng(bench.seed)
  shape = tuple(bench.input_shape)
  x = rng.normal(size=(bench.pool_size,) + shape).astype(np.float32)
  y = rng.integers(0, bench.num_classes, bench.pool_size).astype(np.int32)
  rates = np.full(bench.pool_size, config.train.batch_size / bench.pool_size)
  key = jax.random.key(bench.seed)

  def trainer():
    model = models.get(config.model.name, num_classes=bench.num_classes, dropout=config.model.dropout)
    return Trainer(model, optim.get(config.train.optimizer, config.train.learning_rate),
                   task='multiclass', clip_norm=config.train.clip_norm,
                   physical_batch_size=config.train.physical_batch_size,
                   grad_method=config.train.grad_method)

  with compile_cache.temporary():  # cold: the first compile of each step is a real one
    dp_trainer = trainer()
    dp = _time_training(dp_trainer, x, y, rates, config, True, rng, key)
    cached = _cached_compile_seconds(trainer(), x, y, key, dp['chunk_sizes'])
    plain_trainer = trainer()
    plain = _time_training(plain_trainer, x, y, rates, config, False, rng, key)
    params = plain_trainer.init(key, x[:1]).params
    query = _query_throughput(config, plain_trainer.model, params, x[:bench.query_batch_size],
                              bench.steps)
  ratio = dp['examples_per_s'] / plain['examples_per_s']
  result = {
      'schema': SCHEMA, 'mode': 'train', 'device': jax.default_backend(), 'model': config.model.name,
      'input_shape': list(shape), 'batch_size': config.train.batch_size,
      'dp_examples_per_s': dp['examples_per_s'],
      'nonprivate_examples_per_s': plain['examples_per_s'],
      'dp_over_nonprivate': ratio,
      'compile_seconds': dp['compile_seconds'],
      'compile_seconds_cached': cached,
      'dp_peak_memory_bytes': dp['peak_memory_bytes'],
      'nonprivate_peak_memory_bytes': plain['peak_memory_bytes'],
      'dp_over_nonprivate_memory': dp['peak_memory_bytes'] / plain['peak_memory_bytes'],
      'query_examples_per_s': query,
      'query_strategy': bench.query_strategy,
      'padding_fraction': _padding_fraction(rates, config, dp_trainer, rng),
      'nonprivate_compile_seconds': plain['compile_seconds'],
      'dp_compiles': dp['compiles'],
      'grad_method': dp_trainer.grad_method,
      'physical_batch_size': config.train.physical_batch_size,
      'steps_timed': bench.steps,
      'num_devices': jax.device_count(),
      'goal_dp_over_nonprivate': GOAL_DP_OVER_NONPRIVATE,
      'goal_dp_over_nonprivate_memory': GOAL_DP_OVER_NONPRIVATE_MEMORY,
  }
  if bench.opacus_dp_examples_per_s is not None:
    result['opacus_dp_examples_per_s'] = bench.opacus_dp_examples_per_s
    result['dp_over_opacus_dp'] = dp['examples_per_s'] / bench.opacus_dp_examples_per_s
    result['goal_dp_over_opacus_dp'] = bench.goal_dp_over_opacus_dp
  return result


def main(argv):
  del argv
  result = run(_CONFIG.value)
  if _JSON.value:
    print(json.dumps(result))
    return
  for name, value in result.items():
    print(f'{name}: {value:.4g}' if isinstance(value, float) and math.isfinite(value)
          else f'{name}: {value}')


if __name__ == '__main__':
  flags.mark_flag_as_required('config')
  cli.run(main)
