"""Datasets by name: `data.load(name, data_dir=..., test_size=..., seed=...) -> Dataset`."""

from dpal_jax import registry

DATASETS = {
    'synthetic': 'dpal_jax.data.synthetic:load',
    'digits': 'dpal_jax.data.embedded:load_digits',
    'mnist5k': 'dpal_jax.data.embedded:load_mnist5k',
}


def load(name: str, **kwargs):
  """Loads the dataset registered under `name` (config field `dataset.name`)."""
  return registry.resolve(DATASETS, name, 'dataset.name')(**kwargs)
