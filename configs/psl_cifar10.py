"""Peer Study Learning in the source's CIFAR-10 setting (for users with the data and an accelerator).

90 % of the 50,000-image pool protected (5,000 candidates), 3,000 labels (1,000 initial and 4 queries of
500), a ResNet9-GN task learner with DP-SGD and 3 SmallCNN peers; ε = 8 for every unprotected example,
queries included (the bounded `peer_study_js` score through the Laplace top-k); protected examples get no
DP guarantee (docs/psl.md §5). The source's own, non-private algorithm: --config.privacy.enabled=False
--config.privacy.epsilon_al=inf --config.al.strategy=peer_study.
"""

from configs import cifar10_entropy
from configs import psl_mnist5k


def get_config():
  config = cifar10_entropy.get_config()
  config.privacy.mode = 'cohort_exact'
  config.privacy.epsilon_al = 1.0
  config.train.batch_size = 512
  config.train.physical_batch_size = 256
  config = psl_mnist5k.add_psl(config, protected_fraction=0.9, peer_model='cnn')
  config.psl.peer_steps = 500
  config.psl.peer_batch_size = 128
  config.al.initial_size = 1000
  config.al.query_sizes = (500, 500, 500, 500)
  config.al.labeling_budget = 3000
  return config
