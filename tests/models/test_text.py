"""The BERT-style text classifier: masking, segments, dropout, per-example vmap, pretrained encoder."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import traverse_util

from dpal_jax import models
from dpal_jax.data import snli

SMALL = dict(vocab_size=snli.VOCAB_SIZE, max_length=32, hidden=32, layers=2, heads=4, mlp=64)


@pytest.fixture(scope='module')
def model_and_params():
  model = models.get('text_transformer', num_classes=3, dropout=0.1, **SMALL)
  x = jnp.asarray(snli.encode_pair('a dog runs', 'an animal moves', 32))[None]
  return model, jax.jit(model.init)(jax.random.key(0), x)['params']


def test_padding_is_masked_out(model_and_params):
  model, params = model_and_params
  short = snli.encode_pair('two men play chess', 'people play a game', 16)
  long = snli.encode_pair('two men play chess', 'people play a game', 32)
  apply = jax.jit(model.apply)
  np.testing.assert_allclose(apply({'params': params}, short[None]),
                             apply({'params': params}, long[None]), rtol=1e-5, atol=1e-6)


def test_segments_come_from_the_separator(model_and_params):
  model, params = model_and_params
  x = jnp.asarray([snli.encode_pair('a b', 'c d', 16), snli.encode_pair('a b c', 'd', 16)])
  logits = jax.jit(model.apply)({'params': params}, x)
  assert logits.shape == (2, 3) and not np.allclose(logits[0], logits[1])
  features = jax.jit(lambda p, x: model.apply({'params': p}, x, method=model.embed))(params, x)
  assert features.shape == (2, 32)


def test_dropout_per_example_under_vmap(model_and_params):
  model, params = model_and_params
  x = jnp.broadcast_to(jnp.asarray(snli.encode_pair('a cat', 'a pet', 32)), (8, 1, 32))
  out = jax.jit(jax.vmap(lambda x1, k: model.apply(
      {'params': params}, x1, True, rngs={'dropout': k})))(x, jax.random.split(jax.random.key(1), 8))
  assert len({tuple(np.round(o.ravel(), 5)) for o in np.asarray(out)}) == 8
  evaluated = jax.jit(model.apply)({'params': params}, x[0])
  np.testing.assert_array_equal(evaluated, jax.jit(model.apply)({'params': params}, x[0]))


def test_pretrained_encoder_loads_with_a_fresh_head(model_and_params, tmp_path):
  model, params = model_and_params
  flat = {'/'.join(k): np.asarray(v) for k, v in traverse_util.flatten_dict(params).items()}
  np.savez(tmp_path / 'encoder.npz', **flat)
  config = ml_collections.ConfigDict({'name': 'text_transformer',
                                      'checkpoint': str(tmp_path / 'encoder.npz')})
  loaded = models.pretrained_params(config, num_classes=5, key=jax.random.key(2))
  assert loaded['head']['kernel'].shape == (32, 5)
  np.testing.assert_array_equal(loaded['layer_1']['query']['kernel'],
                                params['layer_1']['query']['kernel'])
  wider = models.get('text_transformer', num_classes=5, **SMALL)
  x = jnp.asarray(snli.encode_pair('a', 'b', 32))[None]
  assert jax.jit(wider.apply)({'params': loaded}, x).shape == (1, 5)
