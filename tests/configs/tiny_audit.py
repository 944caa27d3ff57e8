"""A seconds-long audit for the tests: the tiny experiment with plain SGD and 1000 canaries of each kind."""

from configs import audit
from tests.configs import tiny


def get_config():
  config = tiny.get_config()
  config = audit.add_audit(config, claimed_epsilon=1.0)
  config.train.learning_rate = 0.5
  return config
