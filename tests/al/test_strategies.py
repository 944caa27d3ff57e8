"""The strategy registry and the `select` entry point, end to end through a
tiny model."""

import jax
import numpy as np
import pytest

from dpal_jax.al import strategies
from dpal_jax.al import uncertainty
from dpal_jax.errors import ConfigError
from dpal_jax.models import inference
from dpal_jax.privacy.mechanisms.gaussian_top_k import GaussianTopK
from dpal_jax.privacy.mechanisms.laplace_top_k import LaplaceTopK

LAPLACE = LaplaceTopK(0.5)
GAUSSIAN = GaussianTopK(2.0, sample_rate=0.5)


def _query(name, model, params, pool, *, k=10, task='multiclass', query=None, seed=0, **kw):
  """`select` with the committee {'online': params} and the mechanism `query` (None: exact)."""
  unlabeled, labeled = pool
  return strategies.select(strategies.get(name), model=model, committee={'online': params},
                           x_unlabeled=unlabeled, x_labeled=labeled, k=k, task=task, mechanism=query,
                           rng=np.random.default_rng(seed), key=jax.random.key(seed), batch_size=64, **kw)


def test_registry():
  assert strategies.get('entropy').clamp == 0.8 and strategies.get('bald').clamp == 1.0
  assert strategies.get('random').private and strategies.get('random').clamp is None
  assert not strategies.get('badge').private and not strategies.get('coreset').private
  for name, strategy in strategies.STRATEGIES.items():
    assert strategy.name == name
    assert sum(f is not None for f in (strategy.score, strategy.pick, strategy.scores)) == 1
    assert strategy.clamp is None or strategy.pick is None
    peers, lhd = name.startswith('peer_study'), name.startswith('lhd')
    expected = (() if name == 'random' else (strategies.PEERS,) if peers
                else (strategies.SNAPSHOT_ONLINE, strategies.SNAPSHOT_EMA) if lhd else ('online',))
    assert strategy.members == expected
  with pytest.raises(ConfigError, match="al.strategy 'nope' is unknown.*entropy"):
    strategies.get('nope')


# The peer-study strategies read stacked peers, not {'online': params}: tests/psl/test_feedback.py; LHD's
# read the snapshot pair: tests/al/test_lhd.py.
@pytest.mark.parametrize('name', sorted(n for n in strategies.STRATEGIES
                                        if not n.startswith(('peer_study', 'lhd'))))
@pytest.mark.parametrize('query', [None, LAPLACE, GAUSSIAN], ids=['exact', 'laplace', 'gaussian'])
def test_query_returns_k_distinct_indices(name, query, tiny, pool):
  model, params = tiny
  if query is not None and not strategies.get(name).private:
    with pytest.raises(ConfigError, match=f"al.strategy '{name}' has no private selection mechanism; "
                                          r'set privacy.epsilon_al=inf'):
      _query(name, model, params, pool, query=query)
    return
  chosen = _query(name, model, params, pool, query=query, mc_samples=3)
  assert chosen.dtype == np.int64 and chosen.shape == (10,)
  assert len(set(chosen.tolist())) == 10 and chosen.min() >= 0 and chosen.max() < len(pool[0])


@pytest.mark.parametrize('name', ['entropy', 'confidence', 'bald', 'badge', 'coreset', 'random'])
def test_query_multilabel(name, tiny_multilabel, pool):
  model, params = tiny_multilabel
  chosen = _query(name, model, params, pool, task='multilabel', mc_samples=3)
  assert len(set(chosen.tolist())) == 10


def test_margin_refuses_multilabel(tiny_multilabel, pool):
  with pytest.raises(ConfigError, match="'margin' needs single-label"):
    _query('margin', *tiny_multilabel, pool, task='multilabel')


@pytest.mark.parametrize('name,score', [('entropy', uncertainty.entropy),
                                        ('confidence', uncertainty.least_confidence),
                                        ('margin', uncertainty.margin)])
def test_exact_query_is_top_k_of_the_scores(name, score, tiny, pool):
  model, params = tiny
  probs = np.asarray(uncertainty.probabilities(
      inference.predict(model, params, pool[0], batch_size=64), multilabel=False))
  expected = np.argsort(-np.asarray(score(probs)), kind='stable')[:10]
  np.testing.assert_array_equal(_query(name, model, params, pool), expected)


def test_huge_epsilon_is_the_top_k_of_clamped_scores(tiny, pool):
  model, params = tiny
  scores = strategies.pool_scores(strategies.get('margin'), model=model, params=params, x=pool[0],
                                  task='multiclass', key=jax.random.key(0), batch_size=64)
  chosen = _query('margin', model, params, pool, query=LaplaceTopK(1e9))
  np.testing.assert_array_equal(chosen, np.argsort(-scores, kind='stable')[:10])


def test_pool_scores_jitted_equal_eager(tiny, pool):
  model, params = tiny
  strategy = strategies.get('entropy')
  kwargs = dict(model=model, params=params, x=pool[0][:40], task='multiclass', key=jax.random.key(0),
                batch_size=64)
  jitted = strategies.pool_scores(strategy, **kwargs)
  with jax.disable_jit():
    eager = strategies.pool_scores(strategy, **kwargs)
  np.testing.assert_allclose(jitted, eager, rtol=1e-5, atol=1e-6)


def test_bald_is_zero_without_dropout_and_positive_with_it(tiny, pool, no_dropout):
  model, params = tiny
  bald = strategies.get('bald')
  kwargs = dict(model=model, params=params, x=pool[0], task='multiclass', key=jax.random.key(0),
                batch_size=64, mc_samples=20)
  np.testing.assert_allclose(strategies.pool_scores(bald, mc_dropout=0.0, **kwargs), 0.0, atol=1e-5)
  assert np.mean(strategies.pool_scores(bald, mc_dropout=0.3, **kwargs)) > 1e-3
  with pytest.raises(ConfigError, match="'bald' needs a model with a dropout"):
    _query('bald', *no_dropout, (pool[0].reshape(150, -1), pool[1].reshape(40, -1)))


def test_random_is_uniform_and_ignores_the_model(pool):
  counts = np.zeros(len(pool[0]))
  for seed in range(300):
    counts[_query('random', None, None, pool, query=LAPLACE, seed=seed)] += 1
  expected = 300 * 10 / len(pool[0])
  assert np.all(np.abs(counts - expected) < 5 * np.sqrt(expected))


def test_query_size_larger_than_the_pool_is_refused(tiny, pool):
  with pytest.raises(ConfigError, match='al.query_sizes'):
    _query('entropy', *tiny, pool, k=len(pool[0]) + 1)


def test_the_mechanism_draws_the_noise(tiny, pool):
  """With a mechanism, selection is its `top_k` of the strategy's scores at the strategy's clamp, on the
  same random stream: the release is the one the ledger charges."""
  model, params = tiny
  strategy = strategies.get('entropy')
  scores = strategies.pool_scores(strategy, model=model, params=params, x=pool[0], task='multiclass',
                                  key=jax.random.key(0), batch_size=64)
  expected = GAUSSIAN.top_k(scores, 10, clamp=strategy.clamp, rng=np.random.default_rng(5))
  np.testing.assert_array_equal(_query('entropy', model, params, pool, query=GAUSSIAN, seed=5), expected)


def test_a_committee_without_the_members_a_strategy_reads_is_refused(tiny, pool):
  model, params = tiny
  missing = r"reads the parameter sets \['online'\]; the committee holds \['ema'\]"
  with pytest.raises(ValueError, match=missing):
    strategies.select(strategies.get('entropy'), model=model, committee={'ema': params},
                      x_unlabeled=pool[0], x_labeled=pool[1], k=5, task='multiclass', mechanism=None,
                      rng=np.random.default_rng(0), key=jax.random.key(0), batch_size=64)
  chosen = strategies.select(strategies.get('random'), model=None, committee={}, x_unlabeled=pool[0],
                             x_labeled=pool[1], k=5, task='multiclass', mechanism=LAPLACE,
                             rng=np.random.default_rng(0), key=jax.random.key(0), batch_size=64)
  assert len(set(chosen.tolist())) == 5
