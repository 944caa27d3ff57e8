"""The dataset registry."""

import inspect

import pytest

from dpal_jax import data, registry
from dpal_jax.errors import ConfigError


def test_unknown_name_lists_the_known_ones():
  with pytest.raises(ConfigError, match=r"dataset.name 'cifar100' is unknown.*cifar10.*mnist5k"):
    data.load('cifar100')


def test_every_entry_resolves_to_a_loader_with_the_uniform_signature():
  for name in data.DATASETS:
    params = inspect.signature(registry.resolve(data.DATASETS, name, 'dataset.name')).parameters
    for arg in ('data_dir', 'test_size', 'seed'):
      assert params[arg].kind == inspect.Parameter.KEYWORD_ONLY, (name, arg)
