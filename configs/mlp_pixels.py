"""The MLP on pixels: configs/default.py as it was before its scattering retune (docs/selection.md).

DP active learning on the embedded mnist5k pool with the two-layer MLP on the raw pixels, 1,500 initial
+ 3 × 500 entropy queries through the Laplace query (3,000 labels), 10 epochs of Adam 2e-3 per phase at
E[B] = 256, ε = 8 for every labeled person including the queries, ε_AL = 1, δ = 1e-5, `cohort_exact`.
The configs that were written on that default start from this one, so their figures stay what they were.
"""

from configs import default


def get_config():
  config = default.get_config()
  config.dataset.features = 'pixels'
  config.model.name = 'mlp'
  config.train.optimizer = 'adam'
  config.train.learning_rate = 2e-3
  config.train.epochs = 10
  config.train.batch_size = 256
  config.train.physical_batch_size = 256
  config.train.clip_norm = 1.0
  config.privacy.epsilon_al = 1.0
  config.privacy.epsilon_al_split = 'fixed'
  config.privacy.query_mechanism = 'laplace'
  config.al.strategy = 'entropy'
  config.al.initial_size = 1500
  config.al.query_sizes = (500, 500, 500)
  config.al.labeling_budget = 3000
  return config
