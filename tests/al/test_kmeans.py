"""The shared k-means++ seeding (BADGE, LHD): a NumPy reference, no repeats, the D² law, tensor factors."""

import jax
import numpy as np
import pytest

from dpal_jax.al import kmeans


def _distinct(indices, n, k):
  indices = np.asarray(indices)
  return len(indices) == k and len(set(indices.tolist())) == k and indices.min() >= 0 and indices.max() < n


def _reference(points, key, k):
  """k-means++ seeding in float64 NumPy, written from its definition, with the same Gumbel draws."""
  points = np.asarray(points, np.float64).reshape(len(points), -1)
  chosen = [int(np.argmax(np.sum(points**2, -1)))]
  min_d2 = np.sum((points - points[chosen[0]])**2, -1)
  for t in range(1, k):
    weights = np.where(np.isin(np.arange(len(points)), chosen), 0.0, min_d2)
    with np.errstate(divide='ignore'):
      logits = np.log(weights) if weights.sum() > 0 else np.zeros(len(points))
    logits[chosen] = -np.inf
    c = int(np.argmax(logits + np.asarray(kmeans.gumbel_noise(key, t, len(points)), np.float64)))
    chosen.append(c)
    min_d2 = np.minimum(min_d2, np.sum((points - points[c])**2, -1))
  return chosen


@pytest.mark.parametrize('seed', range(6))
@pytest.mark.parametrize('k', [1, 5, 20])
def test_seeding_matches_a_numpy_reference_with_the_same_seed(seed, k):
  rng = np.random.default_rng(seed)
  points = rng.normal(size=(40, 3)) * rng.uniform(0.1, 3.0, size=(40, 1))
  key = jax.random.key(seed)
  chosen = np.asarray(kmeans.seeding((points.astype(np.float32),), key, k=k))
  assert chosen.tolist() == _reference(points, key, k)
  assert _distinct(chosen, 40, k)


@pytest.mark.parametrize('k', [1, 10, 60])
def test_no_repeated_picks_even_with_many_duplicates(k):
  rng = np.random.default_rng(0)
  residuals = rng.normal(size=(60, 3)).astype(np.float32)
  features = rng.normal(size=(60, 5)).astype(np.float32)
  features[30:] = features[0]  # many duplicates of one feature vector
  assert _distinct(kmeans.seeding((residuals, features), jax.random.key(0), k=k), 60, k)


def test_all_points_equal_draws_uniformly_without_repeats():
  same = np.ones((8, 2), np.float32)
  assert _distinct(kmeans.seeding((same, same), jax.random.key(1), k=8), 8, 8)


def test_duplicates_of_a_chosen_point_are_not_drawn_while_distinct_points_remain():
  # 50 copies of one point and 5 distinct ones: after the copies' first pick, D = 0 for the other copies.
  rng = np.random.default_rng(7)
  points = np.concatenate([np.repeat([[9.0, 9.0]], 50, axis=0), rng.normal(size=(5, 2))]).astype(np.float32)
  chosen = np.asarray(kmeans.seeding((points,), jax.random.key(3), k=6))
  assert np.sum(chosen < 50) == 1 and set(chosen[chosen >= 50].tolist()) == set(range(50, 55))


def test_tensor_factors_give_the_distances_of_the_outer_product():
  rng = np.random.default_rng(2)
  residuals = rng.normal(size=(40, 3)).astype(np.float32)
  features = rng.normal(size=(40, 4)).astype(np.float32)
  g = np.einsum('nk,nd->nkd', residuals, features).reshape(40, -1)
  key = jax.random.key(2)
  factored = np.asarray(kmeans.seeding((residuals, features), key, k=8))
  assert factored[0] == np.argmax(np.linalg.norm(g, axis=1))
  assert factored.tolist() == _reference(g, key, 8)
  factors = (residuals, features)
  np.testing.assert_allclose(kmeans.sq_dist_to(factors, kmeans.sq_norms(factors), 5),
                             np.sum((g - g[5])**2, -1), rtol=1e-4, atol=1e-4)


def test_second_pick_follows_the_d2_law():
  points = np.array([[3.0, 0.0], [0.0, 0.0], [1.0, 0.0], [2.0, 0.0]], np.float32)  # first pick: index 0
  draws = np.array([int(kmeans.seeding((points,), jax.random.key(s), k=2)[1]) for s in range(600)])
  expected = np.array([9.0, 4.0, 1.0]) / 14.0   # D² to the first center: 9, 4, 1
  observed = np.array([np.mean(draws == i) for i in (1, 2, 3)])
  assert np.all(np.abs(observed - expected) < 0.06)


def test_small_embeddings_stay_selectable():
  # The origin is not a center: a tiny point far from three large, close ones is the likely second pick.
  features = np.array([[10, 1], [10, -1], [10, 0], [0.01, 0]], np.float32)
  residuals = np.ones((4, 1), np.float32)
  second = [int(kmeans.seeding((residuals, features), jax.random.key(s), k=2)[1]) for s in range(20)]
  assert second.count(3) >= 15


def test_one_factor_distances_hold_far_from_the_origin():
  # Unit-scale spread 10^3 from the origin: ‖g‖² ≈ 10^6, so the norm expansion would err by ~0.1 in float32.
  rng = np.random.default_rng(4)
  points = (1e3 + rng.normal(size=(40, 3))).astype(np.float32)
  np.testing.assert_allclose(kmeans.sq_dist_to((points,), kmeans.sq_norms((points,)), 7),
                             np.sum((points.astype(np.float64) - points[7])**2, -1), rtol=1e-5)
  key = jax.random.key(4)
  assert np.asarray(kmeans.seeding((points,), key, k=10)).tolist() == _reference(points, key, 10)
