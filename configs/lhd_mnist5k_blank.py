"""LHD on the offline mnist5k pool with the 'blank' noise setting (docs/lhd.md), without privacy.

The 5,000 clean images plus 4 × 5,000 black images with uniform labels (80 % of the pool is noise, the
paper's noise_mult); an MLP trained from scratch every round, Adam 1e-3, batch 64, 20 epochs per round;
500 random initial labels, 5 rounds of 500 queries by k-means++ over the LHD embedding. Each query's log
line says how many picks are noisy. Compare --config.al.strategy=entropy | badge | random. Private
variant: --config.privacy.enabled=True --config.privacy.epsilon_al=1 --config.al.strategy=lhd_score.
"""

import math

from configs import mlp_pixels


def get_config():
  config = mlp_pixels.get_config()
  config.dataset.name = 'mnist5k'
  config.dataset.noise = 'blank'
  config.dataset.noise_mult = 4.0
  config.model.name = 'mlp'
  config.train.optimizer = 'adam'
  config.train.learning_rate = 1e-3
  config.train.epochs = 20
  config.train.batch_size = 64
  config.train.physical_batch_size = 64
  config.train.fresh_init = True
  config.privacy.enabled = False
  config.privacy.epsilon_al = math.inf
  config.al.strategy = 'lhd'
  config.al.initial_size = 500
  config.al.query_sizes = (500,) * 5
  config.al.labeling_budget = 3000
  config.al.query_batch_size = 2048
  return config
