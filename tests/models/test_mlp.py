import jax
import jax.numpy as jnp
import numpy as np

from dpal_jax import models
from dpal_jax.models.mlp import MLP


def test_default_is_two_hidden_layers_of_512_on_flattened_input():
  model = models.get('mlp', num_classes=10)
  x = jnp.ones((3, 28, 28, 1))
  variables = model.init(jax.random.key(0), x)
  shapes = jax.tree.map(jnp.shape, variables['params'])
  assert shapes == {'dense_0': {'kernel': (784, 512), 'bias': (512,)},
                    'dense_1': {'kernel': (512, 512), 'bias': (512,)},
                    'head': {'kernel': (512, 10), 'bias': (10,)}}
  assert model.apply(variables, x).shape == (3, 10)
  assert model.apply(variables, x, method='embed').shape == (3, 512)


def test_hidden_sizes_and_dropout_are_configurable():
  model = MLP(num_classes=4, hidden=(7,), dropout=0.5)
  x = jnp.ones((5, 3))
  variables = model.init(jax.random.key(0), x)
  features = model.apply(variables, x, method='embed')
  assert features.shape == (5, 7) and np.all(features >= 0)
  np.testing.assert_array_equal(model.apply(variables, x), model.apply(variables, x))
  trained = model.apply(variables, x, train=True, rngs={'dropout': jax.random.key(1)})
  assert not np.allclose(trained, model.apply(variables, x))
