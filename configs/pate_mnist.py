"""PATE on MNIST in the setting of Papernot et al. 2018 (Confident-GNMax): 250 teachers, T = 200, σ₁ = 150,
σ₂ = 40, 640 student queries, δ = 1e-5. Needs the MNIST files (tfds; set dataset.data_dir).

The teachers split the 60,000 training digits (240 each, one partition per record); the student's public
pool is 9,000 of the 10,000 test digits (a seeded permutation) and the other 1,000 evaluate it, as in the
PATE papers. The queries go in 10 rounds of 64, chosen by entropy. privacy.epsilon = 4.5 is above the
worst case of the whole run (all 640 tested and answered: ε ≈ 4.25 at δ = 1e-5, RDP), so no round is cut;
with the paper's 286 answers the guaranteed ε is ≈ 2.76. A small CNN for teachers and student; on a GPU,
raise pate.teacher_chunk to train more teachers per vmap.
"""

from configs import pate_mnist5k


def get_config():
  config = pate_mnist5k.get_config()
  config.dataset.name = 'mnist'
  config.dataset.test_size = None
  config.model.name = 'cnn'
  config.train.epochs = 20
  config.privacy.epsilon = 4.5
  config.privacy.delta = 1e-5
  config.al.query_sizes = (64,) * 10
  pate = config.pate
  pate.num_teachers = 250
  pate.public_from = 'test'
  pate.public_size = 9000
  pate.aggregator = 'confident_gnmax'
  pate.threshold = 200.0
  pate.sigma1 = 150.0
  pate.sigma2 = 40.0
  pate.teacher_steps = 1000
  pate.teacher_batch_size = 32
  pate.teacher_learning_rate = 1e-3
  pate.teacher_hidden = None
  pate.teacher_chunk = 50
  return config
