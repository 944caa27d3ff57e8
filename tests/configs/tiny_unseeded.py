"""The tiny config with OS-entropy noise (seed None), as a real run on sensitive data would use."""

from tests.configs import tiny


def get_config():
  config = tiny.get_config()
  config.seed = None
  return config
