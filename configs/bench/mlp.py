"""Bench: MLP 784→512→512→10 (ReLU) on 28×28×1 inputs, expected batch 256, dense fast path ('auto').

  python -m dpal_jax.bench --config=configs/bench/mlp.py [--json]
"""

import ml_collections

from configs import mlp_pixels


def get_config() -> ml_collections.ConfigDict:
  config = mlp_pixels.get_config()
  config.model.name = 'mlp'
  config.train.optimizer = 'sgd'
  config.train.learning_rate = 0.1
  config.train.batch_size = 256
  config.train.physical_batch_size = 256
  config.train.clip_norm = 1.0
  config.bench = ml_collections.ConfigDict()
  config.bench.input_shape = (28, 28, 1)
  config.bench.num_classes = 10
  config.bench.pool_size = 4096
  config.bench.noise_multiplier = 1.0
  config.bench.steps = 10           # timed logical batches (the median is reported)
  config.bench.warmup_steps = 2
  config.bench.mode = 'train'        # 'train': DP and non-private steps; 'score': pool scoring only
  config.bench.query_batch_size = 1024
  config.bench.query_strategy = 'entropy'   # scored through al.strategies.pool_scores
  config.bench.score_candidates = 1_000_000  # bench.mode = 'score': synthetic rows, made batch by batch
  config.bench.score_batch_size = 4096
  config.bench.seed = 0
  config.bench.opacus_dp_examples_per_s = ml_collections.config_dict.placeholder(float)
  config.bench.goal_dp_over_opacus_dp = 10.0   # CPU goal, docs/original_dpal.md
  return config
