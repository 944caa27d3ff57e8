"""PATE with an active student on the embedded mnist5k digits (offline, about a minute on 2 CPU cores).

The 4,000-digit pool is split by a public seeded permutation into 3,000 sensitive digits for 100
teachers (30 each, one partition per record) and a public pool of 1,000 unlabelled digits for the
student; the 1,000 test digits evaluate the student. Confident-GNMax answers (threshold T = 60 of 100
votes, σ₁ = 30, σ₂ = 15); the student, an MLP trained without DP-SGD on the answered labels, sends 100
entropy-selected queries a round for up to 8 rounds, or until ε = 8 (δ = 1e-5, RDP) would be exceeded.
"""

import ml_collections

from configs import mlp_pixels


def pate_section() -> ml_collections.ConfigDict:
  """The `pate` fields with their defaults (the 2018 setting overrides them in pate_mnist.py)."""
  pate = ml_collections.ConfigDict()
  pate.num_teachers = 100
  pate.public_from = 'train'          # 'train': the public pool comes from the pool, the rest is sensitive
  pate.public_size = 1000
  pate.split_seed = 0                 # public: the split and the partition deal
  pate.aggregator = 'confident_gnmax' # 'lnmax' | 'gnmax' | 'confident_gnmax' | 'interactive_gnmax'
  pate.laplace_scale = ml_collections.config_dict.placeholder(float)   # LNMax: b (the 2017 paper's 1/γ)
  pate.sigma1 = 30.0                  # threshold-test noise
  pate.sigma2 = 15.0                  # vote noise of an answer
  pate.threshold = 60.0               # T, in votes
  pate.student_weight = 0.0           # Interactive-GNMax: M
  pate.student_confidence = 1.0       # Interactive-GNMax: γ
  pate.teacher_steps = 150
  pate.teacher_batch_size = 16
  pate.teacher_learning_rate = 3e-3
  pate.teacher_hidden = (128,)        # MLP teachers' hidden sizes (None: the model's default)
  pate.teacher_chunk = 0              # teachers vmapped at once (lax.map over chunks); 0: all
  return pate


def get_config() -> ml_collections.ConfigDict:
  config = mlp_pixels.get_config()
  config.loop = 'pate'
  config.dataset.name = 'mnist5k'
  config.model.name = 'mlp'
  config.train.epochs = 30
  config.train.batch_size = 64
  config.train.physical_batch_size = 64
  config.train.learning_rate = 1e-3
  config.privacy.epsilon = 8.0
  config.privacy.delta = 1e-5
  config.al.strategy = 'entropy'
  config.al.query_sizes = (100,) * 8
  config.pate = pate_section()
  return config
