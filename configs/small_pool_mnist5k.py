"""The original's small-pool setting on the embedded mnist5k pool: 500 initial + 4 × 250 queried labels.

Entropy with the Laplace query as the original (docs/original_dpal.md §b–§c), expected batch E[B] = 250,
δ = 1/1500 (one over the labels bought), ε = 8 for every labeled example including its queries, of which
ε_AL = 2 is the query budget spread over the 4 queries (ε_q = 0.5 each). The model and schedule of
configs/mlp_pixels.py (the MLP on pixels).
`scripts/small_pool_compare.py` runs it against random selection and the other query scores
(docs/selection.md).
"""

from configs import mlp_pixels


def get_config():
  config = mlp_pixels.get_config()
  config.privacy.epsilon = 8.0
  config.privacy.delta = 1 / 1500
  config.privacy.epsilon_al = 2.0
  config.train.batch_size = 250
  config.train.physical_batch_size = 256
  config.al.initial_size = 500
  config.al.query_sizes = (250, 250, 250, 250)
  config.al.labeling_budget = 1500
  return config
