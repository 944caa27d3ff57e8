"""The tiny config under the random-selection baseline loop."""

from tests.configs import tiny


def get_config():
  config = tiny.get_config()
  config.loop = 'random_baseline'
  return config
