"""LHD (Khosla et al., ECAI 2023; docs/lhd.md): select where the online model and its EMA disagree.

With θ the online parameters and θ̄ their exponential moving average, both taken at the snapshot epoch
(`SnapshotRule`), h the penultimate features and ŷ = argmax f_θ̄(x) the EMA's label:

    Δh(x) = h_θ̄(x) − h_θ(x),   Δl(x) = | CE(f_θ̄(x), ŷ) − CE(f_θ(x), ŷ) |,   g(x) = Δl(x) · Δh(x).

Points of pure noise are fitted by neither network (small Δl, small Δh), easy points by both; the clean
points the model is learning now are where the fast and the slow model differ. Two selections:

* `lhd` — k-means++ seeding on {g(x)} (`kmeans.seeding`, shared with BADGE), as the paper codes it. Not
  private: one candidate's embedding moves every later pick, so it is refused under a finite
  privacy.epsilon_al and the run's summary says `"private_selection": false`.
* `lhd_score` — the per-candidate scalar s(x) = min(‖g(x)‖, B), B = `al.lhd_score_bound`, through the
  project's private top-k. s(x) depends only on x and on the snapshot parameters, which are DP outputs
  of training taken at a data-independent epoch (post-processing), so changing one candidate moves only
  its own score, by at most B: the mechanism's guarantee holds with clamp and sensitivity B, and the
  ledger charges its event to every candidate (as for entropy).
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from dpal_jax.al import kmeans
from dpal_jax.models import inference

PATIENCE = 5  # epochs in a row the online-EMA accuracy gap must shrink


@dataclasses.dataclass
class SnapshotRule:
  """The paper's snapshot moment: the first epoch after which the gap train-acc(θ) − train-acc(θ̄) has
  shrunk `patience` epochs in a row, else the last epoch (`update` then returns True once).

  The gap is computed from the labeled (private) data without noise, so the rule is for non-private
  training only; under DP-SGD the loop snapshots at a fixed epoch instead (free).

  >>> rule = SnapshotRule(patience=2)
  >>> [rule.update(gap, last=False) for gap in (0.5, 0.4, 0.45, 0.3, 0.2, 0.1)]
  [False, False, False, False, True, False]
  """
  patience: int = PATIENCE
  previous: float = 0.0   # as the paper's code: the first epoch 'shrinks' when its gap is negative
  shrinking: int = 0
  taken: bool = False

  def update(self, gap: float, *, last: bool) -> bool:
    """Records one epoch's gap; True when the snapshot is to be taken now."""
    self.shrinking = self.shrinking + 1 if gap < self.previous else 0
    self.previous = gap
    due = not self.taken and (self.shrinking >= self.patience or last)
    self.taken |= due
    return due


def embedding(model, params: tuple, x: np.ndarray, *, batch_size: int) -> np.ndarray:
  """g(x) = |Δl(x)| · Δh(x) [N, d] for `params` = (θ, θ̄), in jitted padded batches."""
  return inference.map_batches(_embedding_fn(model), tuple(params), x, batch_size=batch_size)


@functools.lru_cache(maxsize=16)
def _embedding_fn(model):

  @jax.jit
  def fn(params, x, key):
    del key
    online, ema = ({'params': p} for p in params)
    logits, logits_ema = model.apply(online, x), model.apply(ema, x)
    label = jnp.argmax(logits_ema, axis=-1)
    ce = lambda z: -jnp.take_along_axis(jax.nn.log_softmax(z, -1), label[:, None], -1)[:, 0]
    loss_change = jnp.abs(ce(logits_ema) - ce(logits))
    feature_change = model.apply(ema, x, method='embed') - model.apply(online, x, method='embed')
    return loss_change[:, None] * feature_change.reshape(x.shape[0], -1)

  return fn


def select(*, model, params, x_unlabeled: np.ndarray, x_labeled: np.ndarray, k: int, task: str,
           rng: np.random.Generator, key: jax.Array, batch_size: int) -> np.ndarray:
  """`lhd`: k distinct indices by k-means++ seeding on g(x) (not private; module docstring)."""
  del x_labeled, task, rng
  if k == 0:
    return np.zeros(0, np.int64)
  g = embedding(model, params, x_unlabeled, batch_size=batch_size)
  return np.asarray(kmeans.seeding((g,), key, k=k), np.int64)


def scores(*, model, params, x: np.ndarray, batch_size: int) -> np.ndarray:
  """`lhd_score`: ‖g(x)‖ per candidate (unclamped; the selection clamps it to [0, al.lhd_score_bound])."""
  return np.linalg.norm(embedding(model, params, x, batch_size=batch_size), axis=-1)
