"""Paper experiment: OCTMNIST (128 px), ResNet9-GN, entropy sampling (the original entropyOct.sh).

The original's OCT script is its CIFAR-10 script with another dataset, physical batch and δ, so this
config is configs/cifar10_entropy.py with those fields changed (mode 'step_ampl_prob_noise' on purpose;
see that file).
"""

from configs import cifar10_entropy


def get_config():
  config = cifar10_entropy.get_config()
  config.dataset.name = 'octmnist'
  config.dataset.image_size = 128  # MedMNIST+ 128×128, as the original
  config.train.physical_batch_size = 256
  config.privacy.delta = 4e-5
  return config
