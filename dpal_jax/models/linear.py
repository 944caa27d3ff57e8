"""Logistic regression: flatten → Dense 'head'. For a few tens of labels on tabular features (30 of them
in configs/oncology_breast_cancer.py), where a deeper net only adds parameters for the noise to hit.

Its `embed` is the flattened input (the features the head reads), so BADGE and core-set work on it.
"""

import flax.linen as nn
import jax.numpy as jnp


class LogisticRegression(nn.Module):
  num_classes: int
  dropout: float = 0.0

  def setup(self):
    self.drop = nn.Dropout(self.dropout)
    self.head = nn.Dense(self.num_classes)

  def embed(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    """The flattened input, with dropout in training when `dropout` > 0."""
    return self.drop(x.reshape((x.shape[0], -1)), deterministic=not train)

  def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    return self.head(self.embed(x, train))
