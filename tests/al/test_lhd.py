"""LHD: the snapshot rule, the embedding |Δl|·Δh, k-means++ selection and the private clipped score."""

import jax
import ml_collections
import numpy as np
import pytest

from dpal_jax.al import lhd
from dpal_jax.al import strategies
from dpal_jax.errors import ConfigError
from dpal_jax.privacy.mechanisms.laplace_top_k import LaplaceTopK


def _pair(tiny, pool):
  """(model, (θ, θ̄)): the tiny MLP and a perturbed copy standing in for its EMA."""
  model, params = tiny
  noise = jax.random.normal(jax.random.key(9), (len(jax.tree.leaves(params)),))
  leaves, tree = jax.tree.flatten(params)
  ema = jax.tree.unflatten(tree, [leaf * (1 + 0.3 * n) for leaf, n in zip(leaves, noise)])
  return model, (params, ema)


def _numpy_embedding(model, online, ema, x):
  log_softmax = lambda z: z - np.log(np.sum(np.exp(z - z.max(-1, keepdims=True)), -1,
                                            keepdims=True)) - z.max(-1, keepdims=True)
  out, out_ema = (np.asarray(model.apply({'params': p}, x), np.float64) for p in (online, ema))
  label = np.argmax(out_ema, -1)
  ce = lambda z: -log_softmax(z)[np.arange(len(x)), label]
  dh = np.asarray(model.apply({'params': ema}, x, method='embed') - model.apply({'params': online}, x,
                                                                             method='embed'))
  return np.abs(ce(out_ema) - ce(out))[:, None] * dh


def test_snapshot_rule_waits_for_five_shrinking_gaps_else_takes_the_last_epoch():
  rule = lhd.SnapshotRule()
  gaps = [0.3, 0.2, 0.1, 0.05, 0.04, 0.03, 0.02, 0.01]   # shrinks from the second epoch on
  due = [rule.update(g, last=i == len(gaps) - 1) for i, g in enumerate(gaps)]
  assert due == [False, False, False, False, False, True, False, False]
  rule = lhd.SnapshotRule()
  due = [rule.update(g, last=i == 5) for i, g in enumerate([0.1, 0.2, 0.1, 0.3, 0.2, 0.4])]
  assert due == [False] * 5 + [True]


def test_embedding_is_the_loss_change_times_the_feature_change(tiny, pool):
  model, (online, ema) = _pair(tiny, pool)
  x = pool[0].reshape(len(pool[0]), -1)
  g = lhd.embedding(model, (online, ema), x, batch_size=64)
  np.testing.assert_allclose(g, _numpy_embedding(model, online, ema, x), rtol=1e-3, atol=1e-5)
  assert np.any(g != 0)
  same = lhd.embedding(model, (online, online), x, batch_size=64)
  np.testing.assert_array_equal(same, 0.0)   # no disagreement, no embedding


def _select(name, model, pair, x, k, mechanism=None, al=None, seed=0):
  strategy = strategies.from_config(al or ml_collections.ConfigDict({'strategy': name}))
  committee = {strategies.ONLINE: pair[0], strategies.SNAPSHOT_ONLINE: pair[0],
               strategies.SNAPSHOT_EMA: pair[1]}
  return strategy, strategies.select_scored(
      strategy, model=model, committee=committee, x_unlabeled=x, x_labeled=x[:0], k=k, task='multiclass',
      mechanism=mechanism, rng=np.random.default_rng(seed), key=jax.random.key(seed), batch_size=64)


def test_lhd_selects_k_distinct_by_kmeans_pp_on_the_embedding(tiny, pool):
  model, pair = _pair(tiny, pool)
  x = pool[0]
  _, (chosen, scores) = _select('lhd', model, pair, x, 12)
  assert scores is None and len(set(chosen.tolist())) == 12
  g = lhd.embedding(model, pair, x, batch_size=64)
  assert chosen[0] == np.argmax(np.linalg.norm(g, axis=1))   # k-means++ starts at the largest ‖g‖


def test_lhd_score_is_the_norm_clamped_to_its_bound_through_the_private_top_k(tiny, pool):
  model, pair = _pair(tiny, pool)
  x = pool[0]
  g = lhd.embedding(model, pair, x, batch_size=64)
  _, (chosen, scores) = _select('lhd_score', model, pair, x, 10)
  np.testing.assert_allclose(scores, np.linalg.norm(g, axis=1), rtol=1e-5)
  assert set(chosen.tolist()) == set(np.argsort(-scores)[:10].tolist())   # exact top-k without noise
  bound = float(np.median(scores))
  al = ml_collections.ConfigDict({'strategy': 'lhd_score', 'lhd_score_bound': bound})
  strategy, (noisy, _) = _select('lhd_score', model, pair, x, 10, mechanism=LaplaceTopK(1.0), al=al)
  assert strategy.clamp == bound and strategy.private
  assert len(set(noisy.tolist())) == 10


def test_kmeans_pp_selection_is_refused_under_a_query_budget():
  with pytest.raises(ConfigError, match="al.strategy 'lhd' has no private selection.*lhd_score"):
    strategies.check_selection(strategies.get('lhd'), private=True)
  strategies.check_selection(strategies.get('lhd_score'), private=True)
  assert strategies.needs_ema(strategies.get('lhd')) and not strategies.needs_ema(strategies.get('entropy'))


def test_lhd_refuses_multilabel_data(tiny_multilabel, pool):
  model, params = tiny_multilabel
  with pytest.raises(ConfigError, match='single-label'):
    strategies.select(strategies.get('lhd'), model=model, committee={
        strategies.SNAPSHOT_ONLINE: params, strategies.SNAPSHOT_EMA: params}, x_unlabeled=pool[0],
        x_labeled=pool[1], k=3, task='multilabel', mechanism=None, rng=np.random.default_rng(0),
        key=jax.random.key(0), batch_size=64)
