"""Bench: pool scoring at scale — entropy of 10⁶ synthetic 28×28×1 candidates under the bench MLP, streamed
through `al.strategies.pool_scores` in static batches of 4096 split across local devices.

  python -m dpal_jax.bench --config=configs/bench/score_1m.py [--json] [--config.bench.score_candidates=N]
"""

import ml_collections

from configs.bench import mlp


def get_config() -> ml_collections.ConfigDict:
  config = mlp.get_config()
  config.bench.mode = 'score'
  return config
