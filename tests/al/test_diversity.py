"""BADGE (k-means++ on gradient embeddings, tests/al/test_kmeans.py) and core-set (k-center greedy)."""

import jax
import numpy as np
import pytest

from dpal_jax.al import diversity


def _distinct(indices, n, k):
  indices = np.asarray(indices)
  return len(indices) == k and len(set(indices.tolist())) == k and indices.min() >= 0 and indices.max() < n


def _brute_force_k_center(points, centers, k):
  d = np.min(np.linalg.norm(points[:, None] - centers[None], axis=-1), axis=1)
  chosen = []
  for _ in range(k):
    d[chosen] = -np.inf
    c = int(np.argmax(d))
    chosen.append(c)
    d = np.minimum(d, np.linalg.norm(points - points[c], axis=-1))
  return chosen


def test_k_center_greedy_matches_brute_force_and_radius_shrinks():
  rng = np.random.default_rng(3)
  points = rng.normal(size=(300, 6)).astype(np.float32)
  centers = rng.normal(size=(700, 6)).astype(np.float32)  # more than one distance block
  chosen, radii = diversity.k_center_greedy(points, centers, 25, rng)
  assert _distinct(chosen, 300, 25)
  assert list(chosen) == _brute_force_k_center(points, centers, 25)
  assert np.all(np.diff(radii) <= 1e-6)
  d_first = np.min(np.linalg.norm(points[chosen[0]] - centers, axis=-1))
  np.testing.assert_allclose(radii[0], d_first, rtol=1e-4)


def test_k_center_greedy_without_centers_and_with_duplicates():
  rng = np.random.default_rng(4)
  points = np.repeat(rng.normal(size=(5, 3)).astype(np.float32), 4, axis=0)
  chosen, radii = diversity.k_center_greedy(points, np.zeros((0, 3), np.float32), 20, rng)
  assert _distinct(chosen, 20, 20)
  assert np.isinf(radii[0]) and np.all(np.diff(radii[1:]) <= 1e-6)
  assert len({tuple(points[c]) for c in chosen[:5]}) == 5  # the 5 distinct points come first


@pytest.mark.parametrize('select', [diversity.badge, diversity.coreset])
@pytest.mark.parametrize('task', ['multiclass', 'multilabel'])
def test_selection_through_a_model(select, task, pool, tiny, tiny_multilabel):
  model, params = tiny if task == 'multiclass' else tiny_multilabel
  unlabeled, labeled = pool
  chosen = select(model=model, params=params, x_unlabeled=unlabeled, x_labeled=labeled, k=12, task=task,
                  rng=np.random.default_rng(5), key=jax.random.key(5), batch_size=64)
  assert chosen.dtype == np.int64 and _distinct(chosen, len(unlabeled), 12)
  empty = select(model=model, params=params, x_unlabeled=unlabeled, x_labeled=labeled, k=0, task=task,
                 rng=np.random.default_rng(5), key=jax.random.key(5), batch_size=64)
  assert empty.shape == (0,)
