"""Stacked peers: the same as separately trained peers from the same keys; the committee API; FedAvg."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dpal_jax import models
from dpal_jax.al import strategies
from dpal_jax.privacy.mechanisms.laplace_top_k import LaplaceTopK
from dpal_jax.psl import peers

MEMBER = models.get('mlp', num_classes=4, hidden=(16,))
CNN = models.get('cnn', num_classes=4, width=4, features=8)
OPTIMIZER = optax.adam(1e-2)


def _batch(seed, n=16):
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, 8, 8, 1)).astype(np.float32)
  return {'x_in': jnp.asarray(x), 'y_in': jnp.asarray(rng.integers(0, 4, n)),
          'teacher_in': jnp.asarray(rng.normal(size=(n, 4)).astype(np.float32)),
          'x_out': jnp.asarray(rng.normal(size=(n, 8, 8, 1)).astype(np.float32))}


def _train(member, params, steps=3):
  opt_state = OPTIMIZER.init(params)
  for step in range(steps):
    params, opt_state = peers.study_step(member, OPTIMIZER, params, opt_state, _batch(step),
                                         out_weight=0.0)
  return params


@pytest.mark.parametrize('member', [MEMBER, pytest.param(CNN, marks=pytest.mark.slow)], ids=['mlp', 'cnn'])
def test_stacked_peers_equal_separately_trained_peers(member):
  keys = jax.random.split(jax.random.key(0), 3)
  x = np.zeros((1, 8, 8, 1), np.float32)
  stacked = peers.init(member, keys, x)
  alone = [peers.init(member, keys[p:p + 1], x) for p in range(3)]
  for p in range(3):   # the same initialisation from the same key
    chex.assert_trees_all_close(jax.tree.map(lambda leaf, i=p: leaf[i], stacked),
                                jax.tree.map(lambda leaf: leaf[0], alone[p]))
  trained = _train(member, stacked)
  assert not np.allclose(jax.tree.leaves(trained)[0], jax.tree.leaves(stacked)[0])
  for p in range(3):
    chex.assert_trees_all_close(jax.tree.map(lambda leaf, i=p: leaf[i], trained),
                                jax.tree.map(lambda leaf: leaf[0], _train(member, alone[p])),
                                atol=1e-5, rtol=1e-4)


def test_stacked_peers_as_a_committee():
  """`select` with strategy peer_study(_js) reads the stacked peers: logits [N, P, K], k distinct picks."""
  keys = jax.random.split(jax.random.key(2), 3)
  x = np.random.default_rng(0).normal(size=(50, 8, 8, 1)).astype(np.float32)
  stacked = peers.init(MEMBER, keys, x)
  model = peers.StackedPeers(MEMBER)
  assert model.apply({'params': stacked}, jnp.asarray(x[:5])).shape == (5, 3, 4)
  for name, mechanism in (('peer_study', None), ('peer_study_js', LaplaceTopK(1.0))):
    picks = strategies.select(strategies.get(name), model=model, committee={strategies.PEERS: stacked},
                              x_unlabeled=x, x_labeled=x[:0], k=7, task='multiclass', mechanism=mechanism,
                              rng=np.random.default_rng(0), key=jax.random.key(0), batch_size=16)
    assert len(set(picks.tolist())) == 7 and picks.max() < 50
  with pytest.raises(ValueError, match=r"reads the parameter sets \['peers'\]"):
    strategies.select(strategies.get('peer_study'), model=model, committee={'online': stacked},
                      x_unlabeled=x, x_labeled=x[:0], k=3, task='multiclass', mechanism=None,
                      rng=np.random.default_rng(0), key=jax.random.key(0), batch_size=16)
  exact = strategies.select_scored(strategies.get('peer_study'), model=model,
                                   committee={strategies.PEERS: stacked}, x_unlabeled=x, x_labeled=x[:0],
                                   k=7, task='multiclass', mechanism=None, rng=np.random.default_rng(0),
                                   key=jax.random.key(0), batch_size=16)
  assert set(exact[0].tolist()) == set(np.argsort(-exact[1])[:7].tolist())


def test_fedavg_is_the_weighted_mean():
  a = {'w': jnp.ones((2, 3))}
  b = {'w': jnp.zeros((2, 3))}
  chex.assert_trees_all_close(peers.fedavg([a, b], [3, 1]), {'w': jnp.full((2, 3), 0.75)})
  with pytest.raises(ValueError, match='one positive weight per client'):
    peers.fedavg([a, b], [1, 0])
