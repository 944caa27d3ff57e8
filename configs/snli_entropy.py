"""Paper experiment: SNLI, entropy sampling (the original entropySNLI.sh), with a BERT-style text_transformer
(trained from scratch, or from a local encoder file in model.checkpoint; the original fine-tuned BERT-base).

The settings of the original script (docs/original_dpal.md §d), its mode 'step_ampl_prob_noise' on purpose (later
cohorts may end slightly above ε; `python -m dpal_jax.plan` shows each cohort's true ε). For new work
use privacy.mode = 'cohort_exact'. The original fixed a seed; here the noise is seeded from OS entropy
unless --config.seed is given (a known seed makes the noise reproducible, so only for experiments).
"""

from configs import mlp_pixels


def get_config():
  config = mlp_pixels.get_config()
  config.dataset.name = 'snli'
  config.model.name = 'text_transformer'
  config.model.dropout = 0.1
  config.train.optimizer = 'adamw'
  config.train.learning_rate = 1e-3
  config.train.epochs = 15
  config.train.batch_size = 4096
  config.train.physical_batch_size = 1024
  config.train.clip_norm = 1.0
  config.privacy.epsilon = 8.0
  config.privacy.delta = 2e-5
  config.privacy.epsilon_al = 2.0
  config.privacy.mode = 'step_ampl_prob_noise'
  config.privacy.accountant = 'rdp'
  config.privacy.query_mechanism = 'laplace'
  config.al.strategy = 'entropy'
  config.al.initial_size = 20000
  config.al.query_sizes = (20000, 6000, 2000, 2000)
  config.al.labeling_budget = 50000
  config.al.query_batch_size = 4096
  return config
