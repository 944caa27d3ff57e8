"""The Four Moons toy of LHD: 30,000 2-D points in 4 classes, 70 % of them one moon with random labels.

DP active learning on `dataset.name = 'four_moons'` (dpal_jax/data/four_moons.py; its test set is the
12,000 clean points) with the MLP and entropy sampling through the private (Laplace) query, the toy's
schedule (7 rounds of 200 queries) from 200 initial labels. Each query's log line says how many of its
picks are noisy: uncertainty sampling is drawn to the moon whose labels nobody can learn.
"""

from configs import mlp_pixels


def get_config():
  config = mlp_pixels.get_config()
  config.dataset.name = 'four_moons'
  config.dataset.test_size = None     # the 12,000 clean points
  config.model.name = 'mlp'
  config.train.learning_rate = 1e-3
  config.train.epochs = 20
  config.train.batch_size = 64
  config.train.physical_batch_size = 64
  config.privacy.delta = 1e-5
  config.al.strategy = 'entropy'
  config.al.initial_size = 200
  config.al.query_sizes = (200,) * 7
  config.al.labeling_budget = 1600
  config.al.query_batch_size = 4096
  return config
