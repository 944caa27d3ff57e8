"""PATE on SVHN in the setting of Papernot et al. 2018 (Confident-GNMax): 250 teachers, T = 300, σ₁ = 200,
σ₂ = 40, 8,500 student queries, δ = 1e-6. Needs the SVHN files (tfds svhn_cropped; set dataset.data_dir).

The teachers split the training images (one partition per record); the student's public pool is 10,000
of the 26,032 test images (a seeded permutation), the other 16,032 evaluate it. The queries go in 17
rounds of 500, chosen by entropy. privacy.epsilon = 22 is above the worst case of the whole run (all
8,500 answered: ε ≈ 21.6 at δ = 1e-6, RDP), so no round is cut; with the paper's 3,098 answers the
guaranteed ε is ≈ 11.8 (the paper's ε ≈ 4.96 is its data-dependent bound). The paper's teachers also
saw SVHN's 'extra' split, which this loader does not read.
"""

from configs import pate_mnist


def get_config():
  config = pate_mnist.get_config()
  config.dataset.name = 'svhn_cropped'
  config.train.epochs = 10
  config.privacy.epsilon = 22.0
  config.privacy.delta = 1e-6
  config.al.query_sizes = (500,) * 17
  pate = config.pate
  pate.public_size = 10_000
  pate.threshold = 300.0
  pate.sigma1 = 200.0
  pate.sigma2 = 40.0
  pate.teacher_steps = 2000
  return config
