"""Paper experiment: BloodMNIST (128 px), ResNet9-GN, entropy sampling (the original entropyBlood.sh).

The settings of the original script (docs/original_dpal.md §d), its mode 'step_ampl_prob_noise' on purpose (later
cohorts may end slightly above ε; `python -m dpal_jax.plan` shows each cohort's true ε). For new work
use privacy.mode = 'cohort_exact'. The original fixed a seed; here the noise is seeded from OS entropy
unless --config.seed is given (a known seed makes the noise reproducible, so only for experiments).
"""

from configs import mlp_pixels


def get_config():
  config = mlp_pixels.get_config()
  config.dataset.name = 'bloodmnist'
  config.dataset.image_size = 128  # MedMNIST+ 128×128, as the original
  config.model.name = 'resnet9_gn'
  config.train.optimizer = 'nadam'
  config.train.learning_rate = 2e-3
  config.train.epochs = 21
  config.train.batch_size = 512
  config.train.physical_batch_size = 256
  config.train.clip_norm = 1.0
  config.privacy.epsilon = 8.0
  config.privacy.delta = 4e-4
  config.privacy.epsilon_al = 0.0  # ε_AL = 0: the original's non-private selection
  config.privacy.mode = 'step_ampl_prob_noise'
  config.privacy.accountant = 'rdp'
  config.privacy.query_mechanism = 'laplace'
  config.al.strategy = 'entropy'
  config.al.initial_size = 1024
  config.al.query_sizes = (1024, 300, 100, 52)
  config.al.labeling_budget = 2500
  config.al.query_batch_size = 2048
  return config
