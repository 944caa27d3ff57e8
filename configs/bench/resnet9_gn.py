"""Bench: ResNet9-GN (the DPAL model, spec/dpal.md §e) on 32×32×3 inputs, 10 classes, expected batch 256.

  python -m dpal_jax.bench --config=configs/bench/resnet9_gn.py [--json]

Slow on CPU (a DP logical batch takes tens of seconds, each chunk shape compiles in ≈ 20–25 s), so
the default times only a few logical batches.
"""

import ml_collections

from configs import default


def get_config() -> ml_collections.ConfigDict:
  config = default.get_config()
  config.model.name = 'resnet9_gn'
  config.train.optimizer = 'sgd'
  config.train.learning_rate = 0.1
  config.train.batch_size = 256
  config.train.physical_batch_size = 256
  config.train.clip_norm = 1.0
  config.bench = ml_collections.ConfigDict()
  config.bench.input_shape = (32, 32, 3)
  config.bench.num_classes = 10
  config.bench.pool_size = 2048
  config.bench.noise_multiplier = 1.0
  config.bench.steps = 3            # timed logical batches (the median is reported)
  config.bench.warmup_steps = 1
  config.bench.query_batch_size = 256
  config.bench.seed = 0
  config.bench.opacus_dp_examples_per_s = ml_collections.config_dict.placeholder(float)
  config.bench.goal_dp_over_opacus_dp = 1.0    # CPU goal, spec/environment.md
  return config
