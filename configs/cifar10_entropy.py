"""Paper experiment: CIFAR-10, ResNet9-GN, entropy sampling (the original entropy.sh).

The settings of the original script (docs/original_dpal.md §d), its mode 'step_ampl_prob_noise' on purpose (later
cohorts may end slightly above ε; `python -m dpal_jax.plan` shows each cohort's true ε). For new work
use privacy.mode = 'cohort_exact'. The original fixed a seed; here the noise is seeded from OS entropy
unless --config.seed is given (a known seed makes the noise reproducible, so only for experiments).
"""

from configs import mlp_pixels


def get_config():
  config = mlp_pixels.get_config()
  config.dataset.name = 'cifar10'
  config.model.name = 'resnet9_gn'
  config.train.optimizer = 'nadam'
  config.train.learning_rate = 1e-3
  config.train.epochs = 30
  config.train.batch_size = 4096
  config.train.physical_batch_size = 1024
  config.train.clip_norm = 1.0
  config.privacy.epsilon = 8.0
  config.privacy.delta = 1e-5
  config.privacy.epsilon_al = 2.0
  config.privacy.mode = 'step_ampl_prob_noise'
  config.privacy.accountant = 'rdp'
  config.privacy.query_mechanism = 'laplace'
  config.al.strategy = 'entropy'
  config.al.initial_size = 10000
  config.al.query_sizes = (10000, 3000, 1000, 1000)
  config.al.labeling_budget = 25000
  config.al.query_batch_size = 2048
  return config
