"""Campaigns on one pool ledger, seconds each: the bundled digits, 1 epoch, a budget small enough that
queries of earlier campaigns use it up (tests/loops/test_campaigns.py)."""

from tests.configs import tiny


def get_config():
  config = tiny.get_config()
  config.train.epochs = 1
  config.train.batch_size = 32
  config.train.physical_batch_size = 32
  config.privacy.epsilon = 2.0
  config.privacy.epsilon_al = 0.8
  config.al.initial_size = 60
  config.al.query_sizes = (30, 30)
  config.al.labeling_budget = 120
  return config
