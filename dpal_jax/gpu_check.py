"""The one-accelerator check (`scripts/gpu_check.sh`): everything a GPU session should measure, in one JSON.

  python -m dpal_jax.gpu_check --out=gpu_check.json      (GPU_CHECK_TINY=1: tiny settings, for CPU)

1. `bench`: `dpal_jax.bench.run` of both bench models (DP and non-private examples/s, their ratio,
   compile seconds cold and cached, peak memory of both steps).
2. `dp_step_vs_cpu`: one DP logical batch (σ = 1, a Poisson batch of a small pool) of both bench models
   on the accelerator and on the host CPU from the same parameters, sampler seed and noise key, at
   'highest' matmul precision (no TF32); the largest parameter difference and whether they agree.
3. `nfnet_f0_dp`: DP fine-tune throughput of NFNet-F0 (random init: no weights are downloaded) at
   192 px, 14 multi-label targets as CheXpert, AGC-SGD as the paper's config.

Timings on a shared host are upper bounds; nothing here asserts a speed.
"""

import json
import os
import time

import jax
import numpy as np
from absl import app
from absl import flags

from dpal_jax import bench, distributed, models, optim
from dpal_jax.dpsgd.trainer import Trainer
from configs.bench import mlp, resnet9_gn

_OUT = flags.DEFINE_string('out', 'gpu_check.json', 'Where the JSON goes.')

SCHEMA = 'dpal_jax.gpu_check/1'
TINY_ENV = 'GPU_CHECK_TINY'
AGREE_RTOL, AGREE_ATOL = 1e-4, 1e-5


def _settings(tiny: bool) -> dict:
  if tiny:
    return dict(equality=(('mlp', (4, 4, 1)), ('cnn', (8, 8, 1))), equality_batch=8,
                nfnet=dict(image_size=32, physical=2, expected_batch=2, steps=1,
                           kwargs=dict(width_multiplier=1 / 8, group_width=16, depths=(1, 1, 1, 1))))
  return dict(equality=(('mlp', (28, 28, 1)), ('resnet9_gn', (32, 32, 3))), equality_batch=16,
              nfnet=dict(image_size=192, physical=32, expected_batch=64, steps=3, kwargs={}))


def _bench_configs(tiny: bool) -> list:
  """The two bench configs; tiny: small inputs and batches, and SmallCNN (the conv path's small twin)
  in place of ResNet9-GN, whose compile alone takes minutes on a CPU."""
  configs = [mlp.get_config(), resnet9_gn.get_config()]
  for config in configs:
    if tiny:
      config.train.batch_size = config.train.physical_batch_size = 16
      config.bench.pool_size, config.bench.steps, config.bench.warmup_steps = 64, 2, 1
      config.bench.query_batch_size = 32
      if config.model.name == 'resnet9_gn':
        config.model.name, config.bench.input_shape = 'cnn', (8, 8, 1)
      else:
        config.bench.input_shape = (3, 3, 1)
    else:
      config.train.physical_batch_size = 256  # one chunk per logical batch: the GPU's best shape
  return configs


def dp_step_vs_cpu(name: str, shape: tuple, batch: int) -> dict:
  """One DP logical batch on the default device and on the CPU; the largest parameter difference."""
  rng = np.random.default_rng(0)
  pool = 4 * batch
  x = rng.normal(size=(pool,) + shape).astype(np.float32)
  y = rng.integers(0, 10, pool).astype(np.int32)
  cpu = jax.devices('cpu')[0]
  model = models.get(name, num_classes=10, dropout=0.0)
  with jax.default_device(cpu):
    init = jax.tree.map(np.asarray, jax.jit(model.init)(jax.random.key(0), x[:1])['params'])
  released = {}
  for where, device in (('default', jax.devices()[0]), ('cpu', cpu)):
    with jax.default_device(device), jax.default_matmul_precision('highest'):
      trainer = Trainer(model, optim.get('sgd', 0.5), task='multiclass', clip_norm=1.0,
                        physical_batch_size=batch)
      state = trainer.init(jax.random.key(0), x, params=init)
      state, _ = trainer.train_phase(state, x, y, sample_rates=np.full(pool, 0.25), steps=1,
                                     noise_multiplier=1.0, expected_batch_size=pool * 0.25,
                                     rng=np.random.default_rng(1), key=jax.random.key(2),
                                     progress=False)
      released[where] = distributed.host_copy(state.params)
  diffs = jax.tree.leaves(jax.tree.map(lambda a, b: float(np.max(np.abs(a - b))), released['default'],
                                       released['cpu']))
  agree = all(jax.tree.leaves(jax.tree.map(
      lambda a, b: bool(np.allclose(a, b, rtol=AGREE_RTOL, atol=AGREE_ATOL)),
      released['default'], released['cpu'])))
  return {'model': name, 'input_shape': list(shape), 'batch': batch, 'grad_method': trainer.grad_method,
          'max_abs_diff': max(diffs), 'agree': agree, 'rtol': AGREE_RTOL, 'atol': AGREE_ATOL}


def nfnet_f0_dp(image_size: int, physical: int, expected_batch: int, steps: int, kwargs: dict) -> dict:
  """Examples/s of DP fine-tuning NFNet-F0 (random init), compile excluded (one warm-up phase)."""
  rng = np.random.default_rng(0)
  pool = 4 * expected_batch
  x = rng.normal(size=(pool, image_size, image_size, 3)).astype(np.float32)
  y = rng.choice([0.0, 1.0], size=(pool, 14)).astype(np.float32)
  model = models.get('nfnet_f0', num_classes=14, dropout=0.2, **kwargs)
  trainer = Trainer(model, optim.get('sgd_agc', 1.0), task='multilabel', clip_norm=1.0,
                    physical_batch_size=physical, pad_multiple=physical)
  params = jax.jit(model.init)(jax.random.key(0), x[:1])['params']
  state = trainer.init(jax.random.key(0), x, params=params)
  phase = dict(sample_rates=np.full(pool, expected_batch / pool), noise_multiplier=1.0,
               expected_batch_size=float(expected_batch), key=jax.random.key(1), progress=False)
  state, warm = trainer.train_phase(state, x, y, steps=1, rng=np.random.default_rng(1), **phase)
  jax.block_until_ready(state)
  start = time.perf_counter()
  state, stats = trainer.train_phase(state, x, y, steps=steps, rng=np.random.default_rng(2), **phase)
  jax.block_until_ready(state)
  seconds = time.perf_counter() - start
  return {'image_size': image_size, 'physical_batch_size': physical,
          'expected_batch_size': expected_batch, 'steps_timed': steps,
          'examples_per_s': stats['mean_batch_size'] * steps / seconds,
          'compile_seconds': warm['compile_seconds'] + stats['compile_seconds'],
          'grad_method': trainer.grad_method, 'peak_memory_bytes': trainer.peak_memory_bytes(),
          'parameters': int(sum(np.size(p) for p in jax.tree.leaves(params)))}


def run(tiny: bool) -> dict:
  start = time.perf_counter()
  settings = _settings(tiny)
  result = {'schema': SCHEMA, 'tiny': tiny, 'device': jax.default_backend(),
            'device_kind': jax.devices()[0].device_kind, 'jax': jax.__version__}
  result['bench'] = {config.model.name: bench.run(config) for config in _bench_configs(tiny)}
  result['dp_step_vs_cpu'] = [dp_step_vs_cpu(name, shape, settings['equality_batch'])
                              for name, shape in settings['equality']]
  result['nfnet_f0_dp'] = nfnet_f0_dp(**settings['nfnet'])
  result['seconds'] = time.perf_counter() - start
  return result


def main(argv):
  del argv
  result = run(tiny=os.environ.get(TINY_ENV, '') not in ('', '0'))
  with open(_OUT.value, 'w') as f:
    json.dump(result, f, indent=1)
  print(json.dumps({'out': _OUT.value, 'seconds': round(result['seconds'], 1),
                    'dp_step_agrees_with_cpu': all(r['agree'] for r in result['dp_step_vs_cpu'])}))


if __name__ == '__main__':
  app.run(main)
