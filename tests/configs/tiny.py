"""A seconds-long experiment for the end-to-end tests: the bundled 8×8 digits, a small MLP."""

from configs import mlp_pixels


def get_config():
  config = mlp_pixels.get_config()
  config.seed = 0
  config.dataset.name = 'digits'
  config.dataset.test_size = 297
  config.model.name = 'mlp'
  config.train.epochs = 2
  config.train.batch_size = 64
  config.train.physical_batch_size = 64
  config.train.learning_rate = 3e-3
  config.privacy.epsilon = 8.0
  config.privacy.delta = 1e-4
  config.privacy.epsilon_al = 1.0
  config.al.initial_size = 300
  config.al.query_sizes = (100, 100)
  config.al.labeling_budget = 500
  config.al.query_batch_size = 256
  return config
