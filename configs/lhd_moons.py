"""LHD on the Four Moons toy (docs/lhd.md), as the paper's script, without privacy.

An MLP 2-128-128-4 trained from scratch every round (with a fresh EMA network; the EMA's step counter
runs on), Adam 1e-3, batch 16, 100 epochs per round; 20 random initial labels, 7 rounds of 200 queries
by k-means++ over the LHD embedding. Compare `--config.al.strategy=confidence` (least confidence), which
buys its labels from the noisy moon. scripts/lhd_moons.py runs the comparison over seeds.

The private variant: `--config.privacy.enabled=True --config.privacy.epsilon_al=1
--config.al.strategy=lhd_score` (DP-SGD training at privacy.epsilon, the clipped LHD score through the
private top-k; k-means++ is not private and is refused there).
"""

import math

from configs import four_moons


def get_config():
  config = four_moons.get_config()
  config.model.name = 'mlp_128x2'
  config.train.optimizer = 'adam'
  config.train.learning_rate = 1e-3
  config.train.epochs = 100
  config.train.batch_size = 16
  config.train.physical_batch_size = 16
  config.train.fresh_init = True
  config.train.batching = 'shuffled'   # the script's shuffled epochs (non-private; --private sets poisson)
  config.privacy.enabled = False
  config.privacy.epsilon_al = math.inf
  config.al.strategy = 'lhd'
  config.al.initial_size = 20
  config.al.query_sizes = (200,) * 7
  config.al.labeling_budget = 1420
  return config
