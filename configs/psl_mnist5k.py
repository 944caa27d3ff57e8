"""Peer Study Learning on the embedded mnist5k pool (offline): 3 MLP peers, an MLP task learner.

The peers are MLPs here, not the source's ResNet-8: P convolutions vmapped over stacked kernels become one
grouped convolution, which XLA:CPU runs slowly (3 SmallCNN peers: 1.2 s per study step at width 8, 3 s at
width 32, against 0.07 s for 3 MLPs; measured on 2 shared cores), so CNN peers are for an accelerator
(configs/psl_cifar10.py).

The pool (4000 examples) is small, so half of it is protected (the source protects 90 % of a 50,000-image
pool; psl.protected_fraction sets it): 2000 candidates remain for 500 initial labels and three queries of
250. Privacy as configs/mlp_pixels.py: the teacher trains with DP-SGD and the queries use the bounded
peer-study score (`peer_study_js`) through the Laplace top-k, ε = 8 for every unprotected example, queries
included; protected examples get no DP guarantee (docs/psl.md). For the source's non-private algorithm set
privacy.enabled = False and privacy.epsilon_al = inf (al.strategy 'peer_study' is then its summed KL).
"""

import ml_collections

from configs import mlp_pixels


def add_psl(config, *, protected_fraction=0.9, peer_model='mlp'):
  """`config` as a psl run: the psl section with the source's study weights (α = 0.1, τ = 4, ξ = 0.01)."""
  config.loop = 'psl'
  config.al.strategy = 'peer_study_js'
  config.psl = ml_collections.ConfigDict()
  config.psl.peers = 3                  # P peer students, trained at once (jax.vmap)
  config.psl.peer_model = peer_model    # a models name; the peers have no dropout
  config.psl.peer_learning_rate = 1e-3
  config.psl.peer_steps = 150           # study steps per client before each query
  config.psl.peer_batch_size = 64       # labeled (in-class) and unlabeled (out-of-class) rows per step
  config.psl.out_weight = 1.0           # λ of the out-of-class ranking loss (0: in-class study only)
  config.psl.alpha = 0.1                # in-class: (1 − α)·CE + α·τ²·KL(teacher_τ ‖ peer_τ)
  config.psl.tau = 4.0
  config.psl.xi = 0.01                  # out-of-class margin
  config.psl.protected_fraction = protected_fraction  # never labeled, uploaded or selected
  config.psl.clients = 1                # > 1: FedAvg of the clients' peers after each study
  config.psl.split_seed = 0             # which examples are protected / of which client (no data read)
  return config


def get_config():
  config = add_psl(mlp_pixels.get_config(), protected_fraction=0.5)
  config.al.initial_size = 500
  config.al.query_sizes = (250, 250, 250)
  config.al.labeling_budget = 1250
  return config
