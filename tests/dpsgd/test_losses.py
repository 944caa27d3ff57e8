import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dpal_jax.dpsgd import losses
from dpal_jax.errors import ConfigError


def test_multiclass_is_per_example_softmax_cross_entropy():
  logits = jnp.array([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
  values = losses.per_example_loss('multiclass')(logits, jnp.array([0, 2]))
  expected = -np.log(np.exp([2.0, 0.0]) / np.exp(logits).sum(1))
  np.testing.assert_allclose(values, expected, rtol=1e-6)


def test_multilabel_is_sigmoid_bce_averaged_over_labels():
  logits = jnp.array([[1.0, -2.0], [0.5, 0.5]])
  targets = jnp.array([[1.0, 0.0], [0.3, 0.7]])
  values = losses.per_example_loss('multilabel')(logits, targets)
  np.testing.assert_allclose(values, optax.sigmoid_binary_cross_entropy(logits, targets).mean(1))
  assert values.shape == (2,)


def test_unknown_task_names_the_choices():
  with pytest.raises(ConfigError, match='multiclass'):
    losses.per_example_loss('regression')
