"""Paper experiment: CheXpert (192 px), NFNet-F0 fine-tuned from the official weights, entropy sampling
(the original entropyChex.sh). Set model.checkpoint to the F0_haiku.npz file.

The settings of the original script (docs/original_dpal.md §d), its mode 'step_ampl_prob_noise' on purpose (later
cohorts may end slightly above ε; `python -m dpal_jax.plan` shows each cohort's true ε). For new work
use privacy.mode = 'cohort_exact'. The original fixed a seed; here the noise is seeded from OS entropy
unless --config.seed is given (a known seed makes the noise reproducible, so only for experiments).
"""

from configs import mlp_pixels


def get_config():
  config = mlp_pixels.get_config()
  config.dataset.name = 'chexpert'
  config.model.name = 'nfnet_f0'
  config.model.dropout = 0.2  # the official F0 head dropout
  config.train.optimizer = 'sgd_agc'
  config.train.learning_rate = 1.0
  config.train.epochs = 30
  config.train.batch_size = 4096
  config.train.physical_batch_size = 100
  config.train.clip_norm = 1.0
  config.privacy.epsilon = 8.0
  config.privacy.delta = 4e-5
  config.privacy.epsilon_al = 0.0  # ε_AL = 0: the original's non-private selection
  config.privacy.mode = 'step_ampl_prob_noise'
  config.privacy.accountant = 'rdp'
  config.privacy.query_mechanism = 'laplace'
  config.al.strategy = 'entropy'
  config.al.initial_size = 10000
  config.al.query_sizes = (10000, 3000, 1000, 1000)
  config.al.labeling_budget = 25000
  config.al.query_batch_size = 128
  return config
