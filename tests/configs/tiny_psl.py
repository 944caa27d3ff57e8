"""A seconds-long psl run for the tests: the tiny experiment (digits, MLP teacher) with 3 small CNN peers."""

from configs import psl_mnist5k
from tests.configs import tiny


def get_config():
  config = psl_mnist5k.add_psl(tiny.get_config(), protected_fraction=0.5)
  config.al.initial_size = 200
  config.al.labeling_budget = 400
  config.psl.peer_steps = 10
  config.psl.peer_batch_size = 32
  config.psl.clients = 2
  return config
