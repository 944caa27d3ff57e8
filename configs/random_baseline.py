"""Random-selection baseline on the default pool: the same labels as configs/default.py bought at random
and trained in one DP-SGD phase on the whole ε (loop `random_baseline`, the original's random.sh)."""

from configs import default


def get_config():
  config = default.get_config()
  config.loop = 'random_baseline'
  return config
