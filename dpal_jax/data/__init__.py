"""Datasets by name: `data.load(name, data_dir=..., test_size=..., seed=...) -> Dataset`.

Every loader takes `data_dir`, `test_size` and `seed`; a few take more (an image size). Those options
reach a loader only through LOADER_OPTIONS, so a `dataset` option set for a loader that does not take
it is a ConfigError naming it, never a TypeError. `load_from_config` then applies the noise setting
(`dataset.noise`, `dataset.noise_mult`; `data.noise_settings`) to whatever the loader returned, and the
fixed feature transform `dataset.features` (FEATURES) to every example.
"""

import dataclasses

from dpal_jax import registry
from dpal_jax import validate
from dpal_jax.data import noise_settings
from dpal_jax.data import units
from dpal_jax.errors import ConfigError

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
    'four_moons': 'dpal_jax.data.four_moons:load',
    'breast_cancer': 'dpal_jax.data.breast_cancer:load',
}


# Fixed, data-independent feature transforms of each example (`dataset.features`): name -> function
# [N, ...] -> [N, ...] whose row i depends on example i and public constants only. 'pixels': none.
FEATURES = {
    'pixels': None,
    'scattering': 'dpal_jax.data.scattering:scatter',
}


def load(name: str, **kwargs):
  """Loads the dataset registered under `name` (config field `dataset.name`)."""
  return registry.resolve(DATASETS, name, 'dataset.name')(**kwargs)

# Options of `config.dataset` that only some loaders take: option -> {dataset.name: loader keyword}.
LOADER_OPTIONS = {
    'image_size': {'bloodmnist': 'size', 'octmnist': 'size', 'chexpert': 'image_size'},
}


def loader_options(dataset_config) -> dict:
  """The loader keywords of the options set in `dataset_config` (config section `dataset`).

  Raises ConfigError for an unknown `dataset.name`, and for an option that is set (not None) but that
  the loader of `dataset.name` does not take, naming the loaders that do.
  """
  validate.choice('dataset.name', dataset_config.name, DATASETS)
  kwargs = {}
  for option, loaders in LOADER_OPTIONS.items():
    value = dataset_config.get(option)
    if value is None:
      continue
    if dataset_config.name not in loaders:
      raise ConfigError(
          f'dataset.{option} ({value!r}) is not an option of dataset.name {dataset_config.name!r}; '
          f'unset it, or choose a dataset that takes it: {", ".join(sorted(loaders))}')
    kwargs[loaders[dataset_config.name]] = value
  return kwargs


def load_from_config(dataset_config):
  """The dataset of config section `dataset`: name, data_dir, test_size, the loader's own options and
  the noise setting appended to its pool (`noise`, `noise_mult`), the feature transform (`features`,
  applied after the noise, to pool and test alike), and simulated privacy units (`sites`,
  `max_records_per_person`: `data.units`).

  The test split and the noise are drawn with seed 0 whatever `config.seed`, so every run of a dataset
  and setting learns from the same pool and is evaluated on the same examples.
  """
  dataset = load(dataset_config.name, data_dir=dataset_config.data_dir,
                 test_size=dataset_config.test_size, seed=0, **loader_options(dataset_config))
  dataset = noise_settings.apply(dataset, dataset_config.noise, dataset_config.noise_mult, seed=0)
  dataset = apply_features(dataset, dataset_config.get('features', 'pixels'))
  return units.apply(dataset, dataset_config.get('sites', 0), dataset_config.get('max_records_per_person', 0),
                     seed=0)


def apply_features(dataset, name: str):
  """`dataset` with the transform FEATURES[name] applied to every pool and test example.

  The transform is a fixed map applied to each example on its own, so it is post-processing of each
  record: it costs no privacy, and a DP computation on the features is DP for the records.
  """
  validate.choice('dataset.features', name, FEATURES)
  if FEATURES[name] is None:
    return dataset
  transform = registry.resolve(FEATURES, name, 'dataset.features')
  return dataclasses.replace(dataset, x_train=transform(dataset.x_train), x_test=transform(dataset.x_test))
