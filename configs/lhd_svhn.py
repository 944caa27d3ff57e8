"""LHD on SVHN (cropped digits) with a noise setting: configs/lhd_cifar10.py's settings on SVHN."""

from configs import lhd_cifar10


def get_config():
  config = lhd_cifar10.get_config()
  config.dataset.name = 'svhn_cropped'
  return config
