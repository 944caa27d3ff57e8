"""The dataset registry."""

import inspect

import pytest

from configs import default
from dpal_jax import data, registry
from dpal_jax.errors import ConfigError, DataError


def test_unknown_name_lists_the_known_ones():
  with pytest.raises(ConfigError, match=r"dataset.name 'cifar100' is unknown.*cifar10.*mnist5k"):
    data.load('cifar100')


def test_every_entry_resolves_to_a_loader_with_the_uniform_signature():
  for name in data.DATASETS:
    params = inspect.signature(registry.resolve(data.DATASETS, name, 'dataset.name')).parameters
    for arg in ('data_dir', 'test_size', 'seed'):
      assert params[arg].kind == inspect.Parameter.KEYWORD_ONLY, (name, arg)


def test_every_loader_option_is_a_keyword_of_its_loader():
  for option, loaders in data.LOADER_OPTIONS.items():
    for name, keyword in loaders.items():
      params = inspect.signature(registry.resolve(data.DATASETS, name, 'dataset.name')).parameters
      assert params[keyword].kind == inspect.Parameter.KEYWORD_ONLY, (option, name, keyword)


def _dataset_config(**fields):
  config = default.get_config().dataset
  for name, value in fields.items():
    config[name] = value
  return config


def test_an_option_reaches_only_the_loaders_that_take_it_under_their_own_name():
  assert data.loader_options(_dataset_config(name='bloodmnist', image_size=128)) == {'size': 128}
  assert data.loader_options(_dataset_config(name='chexpert', image_size=192)) == {'image_size': 192}
  assert data.loader_options(_dataset_config(name='chexpert')) == {}
  with pytest.raises(ConfigError) as e:
    data.loader_options(_dataset_config(name='mnist5k', image_size=64))
  assert str(e.value).startswith('dataset.image_size (64) is not an option of')
  assert 'bloodmnist, chexpert, octmnist' in str(e.value)
  with pytest.raises(ConfigError, match="dataset.name 'cifar100' is unknown"):
    data.loader_options(_dataset_config(name='cifar100', image_size=64))


def test_load_from_config_reads_name_test_size_and_options(tmp_path):
  dataset = data.load_from_config(_dataset_config(name='digits', test_size=297))
  assert len(dataset.x_test) == 297 and len(dataset.x_train) == 1797 - 297
  with pytest.raises(DataError, match='bloodmnist_64.npz'):
    data.load_from_config(_dataset_config(name='bloodmnist', image_size=64, data_dir=str(tmp_path)))
