"""LHD on CIFAR-10 with a noise setting, as the paper's scripts (docs/lhd.md), for users with the data.

The paper's settings: noise_mult 4 (80 % of the pool is noise; dataset.noise 'blank' here, or
'diverse' / 'class'), 2,000 initial labels drawn from the whole pool, 10 rounds of 1,000 queries, Adam
1e-4, batch 64, a fresh network every round, confident fine-tuning, no privacy. Two departures: the
network is ResNet9-GN (the paper's narrow ResNet-18 is not in the model registry) and each round trains
a fixed 50 epochs (the paper trains until 99 % online and 80 % EMA training accuracy, or 500 epochs).
CIFAR-10 comes from tfds: set --config.dataset.data_dir to a folder that holds it (nothing is downloaded).
"""

import math

from configs import mlp_pixels


def get_config():
  config = mlp_pixels.get_config()
  config.dataset.name = 'cifar10'
  config.dataset.noise = 'blank'
  config.dataset.noise_mult = 4.0
  config.model.name = 'resnet9_gn'
  config.train.optimizer = 'adam'
  config.train.learning_rate = 1e-4
  config.train.epochs = 50
  config.train.batch_size = 64
  config.train.physical_batch_size = 64
  config.train.fresh_init = True
  config.train.finetune_confident = True
  config.privacy.enabled = False
  config.privacy.epsilon_al = math.inf
  config.al.strategy = 'lhd'
  config.al.initial_size = 2000
  config.al.query_sizes = (1000,) * 10
  config.al.labeling_budget = 12000
  config.al.query_batch_size = 1024
  return config
