"""Confident fine-tuning (LHD paper §"fine-tuning", docs/lhd.md): the set and its strong augmentation.

After a phase's training, the fine-tuning set is the labeled set plus every unlabeled pool point whose
largest predicted probability exceeds 0.8, all with the model's own predicted labels (the labeled points
too, as the paper codes it); without DP it is skipped when it holds fewer than 1000 points. Training on
it uses strong augmentation (`strong_augment`) and, by default, 100× the learning rate (loops/finetune.py).

*Formal guarantees*: none here. The pool points become training data: under DP they pay for it as a
unit of the ledger (every pool example at the pass's rate and σ, `events.FinetunePass`,
`loops/finetune.py`), the set being a per-record function of the released model.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from dpal_jax.models import inference

THRESHOLD = 0.8     # max softmax probability above which an unlabeled point is taken
MIN_SIZE = 1000     # fewer points: no fine-tuning
CUTOUT = 16         # px, at 32 × 32 (scaled with the image side)
CROP_PAD = 4        # px


def confident_set(model, params, x_labeled: np.ndarray, x_unlabeled: np.ndarray, *,
                  batch_size: int, min_size: int = MIN_SIZE) -> tuple[np.ndarray, np.ndarray] | None:
  """(inputs, the model's labels) of the labeled points and the confident unlabeled ones, or None when
  they are fewer than `min_size` (0 under DP: the pass always runs)."""
  labeled_pred, _ = inference.map_batches(_predict(model), params, x_labeled, batch_size=batch_size)
  pool_pred, pool_conf = inference.map_batches(_predict(model), params, x_unlabeled, batch_size=batch_size)
  confident = pool_conf > THRESHOLD
  if len(x_labeled) + int(confident.sum()) < min_size:
    return None
  x = np.concatenate([np.asarray(x_labeled), np.asarray(x_unlabeled[confident])])
  return x, np.concatenate([labeled_pred, pool_pred[confident]]).astype(np.int32)


@functools.lru_cache(maxsize=16)
def _predict(model):

  @jax.jit
  def fn(params, x, key):
    del key
    probs = jax.nn.softmax(model.apply({'params': params}, x), axis=-1)
    return jnp.argmax(probs, -1), jnp.max(probs, -1)

  return fn


def strong_augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  """Random horizontal flip, random crop after zero padding of CROP_PAD px, and Cutout of a square of
  side CUTOUT · H / 32, per image of a batch [N, H, W, C]; any other input is returned unchanged (there is
  no augmentation of a 2-D point or an embedding). The paper's 4 RandAugment operations are left out."""
  x = np.asarray(x)
  if x.ndim != 4:
    return x
  n, h, w, _ = x.shape
  flip = rng.random(n) < 0.5
  x = np.where(flip[:, None, None, None], x[:, :, ::-1], x)
  padded = np.pad(x, ((0, 0), (CROP_PAD, CROP_PAD), (CROP_PAD, CROP_PAD), (0, 0)))
  dy, dx = rng.integers(0, 2 * CROP_PAD + 1, n), rng.integers(0, 2 * CROP_PAD + 1, n)
  rows = dy[:, None] + np.arange(h)[None]
  cols = dx[:, None] + np.arange(w)[None]
  x = padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
  side = max(1, CUTOUT * h // 32)
  cy, cx = rng.integers(0, h, n), rng.integers(0, w, n)
  inside_y = np.abs(np.arange(h)[None] - cy[:, None]) < (side + 1) // 2
  inside_x = np.abs(np.arange(w)[None] - cx[:, None]) < (side + 1) // 2
  mask = inside_y[:, :, None] & inside_x[:, None, :]
  return np.where(mask[..., None], 0, x).astype(x.dtype)
