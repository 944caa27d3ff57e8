"""Lazy name -> object registries: adding an entry is one line, importing it costs nothing until used."""

import importlib
from collections.abc import Mapping

from dpal_jax import validate


def resolve(table: Mapping[str, str], name: str, field: str):
  """Returns the object at `table[name]` ('package.module:attribute'), imported on first use.

  Raises ConfigError naming `field` and the known names when `name` is unknown.
  """
  validate.choice(field, name, table)
  module_name, attribute = table[name].split(':')
  return getattr(importlib.import_module(module_name), attribute)
