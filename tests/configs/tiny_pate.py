"""A seconds-long PATE run for the end-to-end tests: the bundled 8×8 digits, 20 small teachers; the ε
budget cuts the last round."""

from configs import pate_mnist5k


def get_config():
  config = pate_mnist5k.get_config()
  config.seed = 0
  config.dataset.name = 'digits'
  config.dataset.test_size = 297
  config.train.epochs = 3
  config.train.batch_size = 32
  config.train.physical_batch_size = 32
  config.train.eval_batch_size = 512
  config.privacy.epsilon = 12.0
  config.al.query_sizes = (40, 40, 40)
  config.al.query_batch_size = 512
  config.pate.num_teachers = 20
  config.pate.public_size = 400
  config.pate.threshold = 10.0
  config.pate.sigma1 = 6.0
  config.pate.sigma2 = 5.0
  config.pate.teacher_steps = 30
  config.pate.teacher_hidden = (32,)
  return config
