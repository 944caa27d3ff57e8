"""Stacked teachers equal separately trained ones, and their votes are histograms of their predictions."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dpal_jax import models
from dpal_jax.pate import partition
from dpal_jax.pate import teachers

STEPS, BATCH = 12, 8


@pytest.fixture(scope='module')
def setting():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(300, 4, 4, 1)).astype(np.float32)
  y = (x[:, 0, 0, 0] + x[:, 1, 1, 0] > 0).astype(np.int32) + (x[:, 2, 2, 0] > 1).astype(np.int32)
  parts = partition.split(len(x), 5, seed=0)
  model = models.get('mlp', num_classes=3, hidden=(8,))
  return x, y, parts, model


@pytest.fixture(scope='module')
def stacked(setting):
  """One instance for every test: its training compiles once."""
  return teachers.StackedTeachers(setting[3], optax.adam(1e-2), steps=STEPS, batch_size=BATCH)


def _separately(model, x, y, parts, init_key, train_key, steps, batch):
  index, _ = parts.members()
  optimizer = optax.adam(1e-2)
  one = jax.jit(teachers.train_one, static_argnums=(0, 1, 2, 3))   # one teacher per call
  out = []
  for t in range(parts.num_teachers):
    params = teachers.init_one(model, jax.random.fold_in(init_key, t), jnp.asarray(x[:1]))
    out.append(one(model, optimizer, steps, batch, params,
                                  jax.random.fold_in(train_key, t), jnp.asarray(x), jnp.asarray(y),
                                  jnp.asarray(index[t]), jnp.int32(parts.sizes[t])))
  return out


def test_stacked_teachers_equal_separately_trained_teachers(setting, stacked):
  x, y, parts, model = setting
  keys = jax.random.key(1), jax.random.key(2)
  separate = _separately(model, x, y, parts, *keys, steps=STEPS, batch=BATCH)
  chunked = teachers.StackedTeachers(model, optax.adam(1e-2), steps=STEPS, batch_size=BATCH, chunk=2)
  for way in (stacked, chunked):   # all vmapped at once; lax.map over chunks of 2 (the last one short)
    params = way.train(*keys, x, y, parts)
    for t, single in enumerate(separate):
      jax.tree.map(lambda s, one, t=t: np.testing.assert_allclose(s[t], one, rtol=1e-5, atol=1e-6),
                   params, single)
  # Teachers differ (their own keys and partitions), and training moved them.
  leaf = jax.tree.leaves(params)[0]
  assert not np.allclose(leaf[0], leaf[1])


def test_a_teacher_reads_only_its_own_partition(setting, stacked):
  x, y, parts, _ = setting
  keys = jax.random.key(3), jax.random.key(4)
  before = stacked.train(*keys, x, y, parts)
  changed_x = x.copy()
  changed_x[parts.teacher == 4] = 0.0   # everything of partition 4 replaced
  after = stacked.train(*keys, changed_x, y, parts)
  for b, a in zip(jax.tree.leaves(before), jax.tree.leaves(after)):
    np.testing.assert_array_equal(b[:4], a[:4])
    assert not np.allclose(b[4], a[4])


def test_votes_count_the_teachers_per_class(setting, stacked):
  x, y, parts, model = setting
  params = stacked.train(jax.random.key(5), jax.random.key(6), x, y, parts)
  predicted = stacked.predictions(params, x[:37], batch_size=16)
  votes = stacked.votes(params, x[:37], num_classes=3, batch_size=16)
  assert votes.shape == (37, 3) and np.all(votes.sum(axis=1) == 5)
  for i in range(37):
    assert votes[i].tolist() == np.bincount(predicted[:, i], minlength=3).tolist()
  single = model.apply({'params': jax.tree.map(lambda p: p[2], params)}, x[:37]).argmax(-1)
  np.testing.assert_array_equal(predicted[2], single)
  accuracy = stacked.accuracies(params, x, y, batch_size=64)
  assert accuracy.shape == (5,) and np.all((0 <= accuracy) & (accuracy <= 1))
