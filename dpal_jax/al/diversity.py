"""Diversity-aware batch selection: BADGE and core-set (k-center greedy). Neither is private.

Both choose a batch by geometry over the whole pool, so one candidate's record moves the choice of the
others: there is no per-candidate score to clamp and noise, and the experiment runs them only when the
query budget (privacy.epsilon_al) is infinite.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from dpal_jax.al import kmeans
from dpal_jax.al import uncertainty
from dpal_jax.models import inference

CENTER_BLOCK = 512  # labeled centers per distance block (bounds the N × block distance matrix)


def badge(*, model, params, x_unlabeled: np.ndarray, x_labeled: np.ndarray, k: int, task: str,
          rng: np.random.Generator, key: jax.Array, batch_size: int) -> np.ndarray:
  """BADGE (Ash et al. 2020): k-means++ seeding on the last layer's gradient embeddings.

  With ŷ the predicted label, the gradient of the loss w.r.t. the head kernel is the outer product
  h ⊗ (p − onehot(ŷ)) (multi-label: sigmoid − thresholded prediction), h the penultimate features. The
  embedding is never materialised: `kmeans.seeding` takes the factors (residuals, features), with
  ⟨g_i, g_j⟩ = ⟨h_i, h_j⟩·⟨r_i, r_j⟩.
  """
  del x_labeled, rng  # BADGE seeds from the pool alone; its sampling uses `key`
  if k == 0:
    return np.zeros(0, np.int64)
  residuals, features = inference.map_batches(
      _residuals_and_features(model, task == 'multilabel'), params, x_unlabeled,
      batch_size=batch_size)
  return np.asarray(kmeans.seeding((residuals, features), key, k=k), np.int64)


def coreset(*, model, params, x_unlabeled: np.ndarray, x_labeled: np.ndarray, k: int, task: str,
            rng: np.random.Generator, key: jax.Array, batch_size: int) -> np.ndarray:
  """Core-set (Sener & Savarese 2018) by k-center greedy on the penultimate features.

  The labeled set is the initial set of centers; each pick is the candidate farthest from all centers.
  """
  del task, key
  if k == 0:
    return np.zeros(0, np.int64)
  points = inference.predict(model, params, x_unlabeled, batch_size=batch_size, method='embed')
  centers = inference.predict(model, params, x_labeled, batch_size=batch_size, method='embed')
  return k_center_greedy(points, centers, k, rng)[0]


@functools.lru_cache(maxsize=16)
def _residuals_and_features(model, multilabel: bool):
  """Jitted batch function: (output − predicted one-hot, penultimate features)."""

  @jax.jit
  def fn(params, x, key):
    del key
    variables = {'params': params}
    probs = uncertainty.probabilities(model.apply(variables, x), multilabel=multilabel)
    if multilabel:
      predicted = (probs > 0.5).astype(probs.dtype)
    else:
      predicted = jax.nn.one_hot(jnp.argmax(probs, axis=-1), probs.shape[-1], dtype=probs.dtype)
    return probs - predicted, model.apply(variables, x, method='embed')

  return fn


def k_center_greedy(points: np.ndarray, centers: np.ndarray, k: int, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray]:
  """(k distinct indices into `points`, the covering radius just before each pick).

  Each pick is the point farthest from its nearest center, which then becomes a center; the radius
  max_i min_c ‖x_i − c‖ can only shrink. With no centers the first pick is uniform (`rng`).
  """
  points = jnp.asarray(points.reshape(len(points), -1), jnp.float32)
  if not 0 < k <= len(points):
    raise ValueError(f'k must be in [1, {len(points)}], got {k}')
  if len(centers) == 0:
    first = int(rng.integers(len(points)))
    min_d2 = jnp.sum((points - points[first])**2, -1).at[first].set(-jnp.inf)
    rest, radii = _farthest_first(points, min_d2, k=k - 1)
    return (np.concatenate([[first], np.asarray(rest)]).astype(np.int64),
            np.concatenate([[np.inf], np.asarray(radii)]))
  centers = np.asarray(centers, np.float32).reshape(len(centers), -1)
  min_d2 = jnp.full(len(points), jnp.inf, jnp.float32)
  for start in range(0, len(centers), CENTER_BLOCK):
    block = centers[start:start + CENTER_BLOCK]
    valid = np.arange(CENTER_BLOCK) < len(block)
    block = np.concatenate([block, np.zeros((CENTER_BLOCK - len(block), block.shape[1]), np.float32)])
    min_d2 = jnp.minimum(min_d2, _min_sq_dist(points, block, valid))
  chosen, radii = _farthest_first(points, min_d2, k=k)
  return np.asarray(chosen, np.int64), np.asarray(radii)


@jax.jit
def _min_sq_dist(points: jax.Array, block: jax.Array, valid: jax.Array) -> jax.Array:
  d2 = (jnp.sum(points**2, -1)[:, None] + jnp.sum(block**2, -1)[None, :] - 2.0 * points @ block.T)
  return jnp.maximum(jnp.min(jnp.where(valid[None, :], d2, jnp.inf), axis=1), 0.0)


@functools.partial(jax.jit, static_argnames='k')
def _farthest_first(points: jax.Array, min_d2: jax.Array, *, k: int):
  """k greedy picks given each point's squared distance to its nearest center (-inf marks a center)."""
  norms = kmeans.sq_norms((points,))

  def pick(t, state):
    chosen, radii, min_d2 = state
    c = jnp.argmax(min_d2)
    radii = radii.at[t].set(jnp.sqrt(jnp.maximum(min_d2[c], 0.0)))
    min_d2 = jnp.minimum(min_d2, kmeans.sq_dist_to((points,), norms, c)).at[c].set(-jnp.inf)
    return chosen.at[t].set(c), radii, min_d2

  state = (jnp.zeros(k, jnp.int32), jnp.zeros(k, jnp.float32), min_d2)
  chosen, radii, _ = jax.lax.fori_loop(0, k, pick, state)
  return chosen, radii
