"""A protected example never reaches a labeled set, a teacher batch or a query result.

Property over random pools, fractions, clients and seeds, through the components the psl loop wires
together (the split, the Pool, the teacher's Poisson sampler, the peer-study selection); every pool row
carries its original index as its first feature, so whatever a component hands on can be traced back.
"""

import jax
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from dpal_jax import models
from dpal_jax.al import strategies
from dpal_jax.data.dataset import Dataset
from dpal_jax.data.pool import Pool
from dpal_jax.dpsgd import sampler
from dpal_jax.errors import ConfigError
from dpal_jax.privacy.mechanisms.laplace_top_k import LaplaceTopK
from dpal_jax.psl import peers
from dpal_jax.psl import protected

MEMBER = models.get('mlp', num_classes=3, hidden=(8,))


def _pool(n, seed):
  rng = np.random.default_rng(seed)
  x = np.stack([np.arange(n), rng.normal(size=n)], axis=1).astype(np.float32)
  return Dataset('ids', x, rng.integers(0, 3, n).astype(np.int32), x[:4], np.zeros(4, np.int32), 3,
                 'multiclass')


def _ids(x) -> set:
  return set(np.asarray(x)[:, 0].astype(int).tolist())


@given(n=st.integers(30, 300), fraction=st.floats(0, 0.9), clients=st.integers(1, 3),
       seed=st.integers(0, 2 ** 16), private=st.booleans())
@settings(max_examples=30, deadline=None)
def test_protected_examples_never_reach_labels_teacher_or_queries(n, fraction, clients, seed, private):
  split = protected.split(_pool(n, seed), protected_fraction=fraction, num_clients=clients, seed=seed)
  guarded = set(split.protected_ids.tolist())
  assert len(guarded) == round(fraction * n)
  assert _ids(split.labeling.x_train).isdisjoint(guarded)
  assert _ids(split.labeling.x_train) | guarded == set(range(n))
  for client in split.clients:   # each client holds its own protected rows, no labels, never as an array
    if len(client.protected):
      assert _ids(client.protected.for_client_study()) <= guarded
    with pytest.raises(TypeError, match='never leave the client'):
      np.asarray(client.protected)
  assert sum(len(c.protected) for c in split.clients) == len(guarded)
  assert sorted(np.concatenate([c.public for c in split.clients]).tolist()) == list(
      range(len(split.public_ids)))

  rng = np.random.default_rng(seed)
  x, public = split.labeling.x_train, len(split.labeling.x_train)
  pool = Pool.initial(public, max(1, public // 4), rng)
  stacked = peers.init(MEMBER, jax.random.split(jax.random.key(seed), 2), x)
  for _ in range(2):
    labeled_x = x[pool.labeled]
    draw = sampler.PoissonSampler(pool.sample_rates([0.5] * pool.num_cohorts), physical_batch_size=16,
                                  pad_multiple=4, rng=rng)
    for chunk in draw.draw().chunks:   # a teacher batch: rows of the labeled set handed to the Trainer
      assert _ids(labeled_x[chunk[chunk != sampler.SENTINEL]]).isdisjoint(guarded)
    unlabeled = pool.unlabeled()
    k = min(len(unlabeled), max(1, public // 8))
    if k == 0:
      break
    picks = strategies.select(
        strategies.get('peer_study_js' if private else 'peer_study'), model=peers.StackedPeers(MEMBER),
        committee={strategies.PEERS: stacked}, x_unlabeled=x[unlabeled], x_labeled=labeled_x, k=k,
        task='multiclass', mechanism=LaplaceTopK(1.0) if private else None, rng=rng,
        key=jax.random.key(seed), batch_size=64)
    pool = pool.label(unlabeled[picks])
    assert _ids(x[unlabeled[picks]]).isdisjoint(guarded)
  assert _ids(x[pool.labeled]).isdisjoint(guarded)


def test_split_is_seeded_and_refuses_clients_without_examples():
  a = protected.split(_pool(50, 0), protected_fraction=0.9, num_clients=2, seed=3)
  b = protected.split(_pool(50, 0), protected_fraction=0.9, num_clients=2, seed=3)
  np.testing.assert_array_equal(a.protected_ids, b.protected_ids)
  with pytest.raises(ConfigError, match='psl.protected_fraction .* fewer than psl.clients'):
    protected.split(_pool(50, 0), protected_fraction=0.9, num_clients=6, seed=3)
