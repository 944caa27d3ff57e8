"""Optimizers by name (config field `train.optimizer`), all from optax."""

import optax

from dpal_jax import registry

OPTIMIZERS = {
    'sgd': 'optax:sgd',
    'momentum': 'dpal_jax.optim:momentum',
    'adam': 'optax:adam',
    'nadam': 'optax:nadam',
    'adamw': 'optax:adamw',
    'sgd_agc': 'dpal_jax.optim.agc:sgd_agc',
}


def momentum(learning_rate: float) -> optax.GradientTransformation:
  """SGD with heavy-ball momentum 0.9."""
  return optax.sgd(learning_rate, momentum=0.9)


def get(name: str, learning_rate: float) -> optax.GradientTransformation:
  """The optimizer registered under `name` at a constant learning rate."""
  return registry.resolve(OPTIMIZERS, name, 'train.optimizer')(learning_rate)
