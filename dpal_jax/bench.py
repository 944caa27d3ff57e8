"""Throughput of the DP-SGD engine on synthetic data.

  python -m dpal_jax.bench --config=configs/bench/resnet9_gn.py [--json] [--config.bench.steps=5]

Logical batches are real Poisson batches at E[B] = train.batch_size: a synthetic pool of
`bench.pool_size` rows, every row sampled at rate batch_size / pool_size, padded and chunked exactly
as in training. Each logical batch is timed to completion; batches that compiled a new chunk shape are
not timed (compile time is reported on its own), the first `bench.warmup_steps` batches are dropped,
and the median of realised-rows / seconds over `bench.steps` timed batches is reported, for the DP step
and for the non-private step with the same sampling. Query scoring: jitted eval-mode forward + softmax entropy.
"""

import json
import math
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app
from absl import flags
from ml_collections import config_flags

from dpal_jax import errors, models, optim
from dpal_jax.dpsgd import sampler
from dpal_jax.dpsgd.trainer import Trainer

_CONFIG = config_flags.DEFINE_config_file('config', None, 'Bench config file.', lock_config=True)
_JSON = flags.DEFINE_bool('json', False, 'Print one JSON object (schema dpal_jax.bench/1).')

SCHEMA = 'dpal_jax.bench/1'
GOAL_DP_OVER_NONPRIVATE = 0.5
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
  rates_seen = []
  max_draws = config.bench.warmup_steps + 4 * config.bench.steps + 16
  for step in range(max_draws):
    if len(rates_seen) == config.bench.steps:
      break
    batch = draw.draw()
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
          'compiles': trainer.compiles - compiles}


def _padding_fraction(rates, config, trainer, rng) -> float:
  """Padded share of the rows over many sampled logical batches (host only, no training)."""
  draw = _sampler(trainer, rates, config, rng)
  batches = [draw.draw() for _ in range(PADDING_DRAWS)]
  return 1 - sum(b.size for b in batches) / sum(b.padded_size for b in batches)


def _query_throughput(model, params, x, repeats: int) -> float:
  """Examples/s of the jitted scoring pass (eval-mode logits → softmax entropy), compile excluded."""
  @jax.jit
  def entropy(params, x):
    log_p = jax.nn.log_softmax(model.apply({'params': params}, x))
    return -jnp.sum(jnp.exp(log_p) * log_p, axis=-1)
  x = jax.device_put(x)
  jax.block_until_ready(entropy(params, x))
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(entropy(params, x))
    times.append(time.perf_counter() - start)
  return len(x) / statistics.median(times)


def run(config) -> dict:
  """Measures the bench of `config`; returns the dict printed by `--json`."""
  bench = config.bench
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

  dp_trainer = trainer()
  dp = _time_training(dp_trainer, x, y, rates, config, True, rng, key)
  plain_trainer = trainer()
  plain = _time_training(plain_trainer, x, y, rates, config, False, rng, key)
  params = plain_trainer.init(key, x[:1]).params
  query = _query_throughput(plain_trainer.model, params, x[:bench.query_batch_size], bench.steps)
  ratio = dp['examples_per_s'] / plain['examples_per_s']
  result = {
      'schema': SCHEMA, 'device': jax.default_backend(), 'model': config.model.name,
      'input_shape': list(shape), 'batch_size': config.train.batch_size,
      'dp_examples_per_s': dp['examples_per_s'],
      'nonprivate_examples_per_s': plain['examples_per_s'],
      'dp_over_nonprivate': ratio,
      'compile_seconds': dp['compile_seconds'],
      'query_examples_per_s': query,
      'padding_fraction': _padding_fraction(rates, config, dp_trainer, rng),
      'nonprivate_compile_seconds': plain['compile_seconds'],
      'dp_compiles': dp['compiles'],
      'grad_method': dp_trainer.grad_method,
      'physical_batch_size': config.train.physical_batch_size,
      'steps_timed': bench.steps,
      'num_devices': jax.device_count(),
      'goal_dp_over_nonprivate': GOAL_DP_OVER_NONPRIVATE,
  }
  if bench.opacus_dp_examples_per_s is not None:
    result['opacus_dp_examples_per_s'] = bench.opacus_dp_examples_per_s
    result['dp_over_opacus_dp'] = dp['examples_per_s'] / bench.opacus_dp_examples_per_s
    result['goal_dp_over_opacus_dp'] = bench.goal_dp_over_opacus_dp
  return result


def main(argv):
  del argv
  try:
    result = run(_CONFIG.value)
  except errors.ConfigError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  if _JSON.value:
    print(json.dumps(result))
    return
  for name, value in result.items():
    print(f'{name}: {value:.4g}' if isinstance(value, float) and math.isfinite(value)
          else f'{name}: {value}')


if __name__ == '__main__':
  flags.mark_flag_as_required('config')
  app.run(main)
