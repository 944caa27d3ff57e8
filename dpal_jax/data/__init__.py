"""Datasets by name: `data.load(name, data_dir=..., test_size=..., seed=...) -> Dataset`."""

from dpal_jax import registry

DATASETS = {
    'synthetic': 'dpal_jax.data.synthetic:load',
    'synthetic_multilabel': 'dpal_jax.data.synthetic:load_multilabel',
    'digits': 'dpal_jax.data.embedded:load_digits',
    'mnist5k': 'dpal_jax.data.embedded:load_mnist5k',
    'cifar10': 'dpal_jax.data.tfds_source:load_cifar10',
    'svhn_cropped': 'dpal_jax.data.tfds_source:load_svhn_cropped',
    'mnist': 'dpal_jax.data.tfds_source:load_mnist',
    'fashion_mnist': 'dpal_jax.data.tfds_source:load_fashion_mnist',
    'bloodmnist': 'dpal_jax.data.medmnist:load_bloodmnist',
    'octmnist': 'dpal_jax.data.medmnist:load_octmnist',
    'chexpert': 'dpal_jax.data.chexpert:load',
    'snli': 'dpal_jax.data.snli:load',
}


def load(name: str, **kwargs):
  """Loads the dataset registered under `name` (config field `dataset.name`)."""
  return registry.resolve(DATASETS, name, 'dataset.name')(**kwargs)
