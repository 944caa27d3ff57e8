import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dpal_jax import models


@pytest.mark.parametrize('shape', [(2, 28, 28, 1), (2, 8, 8, 1)])
def test_small_images_give_logits_and_features(shape):
  model = models.get('cnn', num_classes=10, dropout=0.3)
  x = jnp.asarray(np.random.default_rng(0).normal(size=shape).astype(np.float32))
  variables = model.init(jax.random.key(0), x)
  assert model.apply(variables, x).shape == (2, 10)
  assert model.apply(variables, x, method='embed').shape == (2, 128)
  assert variables['params']['head']['kernel'].shape == (128, 10)
  assert 'batch_stats' not in variables  # GroupNorm, no cross-example statistics
  one = model.apply(variables, x[:1])
  np.testing.assert_allclose(one, model.apply(variables, x)[:1], rtol=1e-5, atol=1e-6)
