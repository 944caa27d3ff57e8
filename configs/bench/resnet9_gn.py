"""Bench: ResNet9-GN (the DPAL model, docs/original_dpal.md §e) on 32×32×3 inputs, 10 classes, expected batch 256.

  python -m dpal_jax.bench --config=configs/bench/resnet9_gn.py [--json]

The MLP bench's settings with this model. Slow on CPU (a DP logical batch takes 8–15 s, each chunk
shape compiles in ≈ 4 s on a free machine and 6–20 s under load), so the default times only a few
logical batches. `--config.train.grad_method=conv_two_pass` benches the memory-lean conv path.
"""

import ml_collections

from configs.bench import mlp


def get_config() -> ml_collections.ConfigDict:
  config = mlp.get_config()
  config.model.name = 'resnet9_gn'
  config.bench.input_shape = (32, 32, 3)
  config.train.physical_batch_size = 64  # measured faster per example on CPU than 256 (24.6 vs 20.4 DP ex/s)
  config.bench.pool_size = 2048
  config.bench.steps = 3            # timed logical batches (the median is reported)
  config.bench.warmup_steps = 1
  config.bench.query_batch_size = 256
  config.bench.goal_dp_over_opacus_dp = 1.0    # CPU goal, docs/original_dpal.md
  return config
