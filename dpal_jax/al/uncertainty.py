"""Uncertainty scores of a batch of predictions, jitted; larger = more informative = selected first.

The scores are the original DPAL's (docs/original_dpal.md §c), turned where needed so that larger means "select"
and so that each lies in [0, Δ] with the Δ its private selection uses as clamp and sensitivity:

| score | single-label | multi-label (first 5 classes) | Δ |
|---|---|---|---|
| entropy | H(p) / log2 K, H in bits | mean binary entropy in bits | 0.8 (clamped) |
| least confidence | (1 − max p) / (1 − 1/K) | (0.5 − min |p − 0.5|) / 0.5 | 1 |
| margin | 1 − (p₍₁₎ − p₍₂₎) | refused | 1 |
| BALD | H(mean_m p_m) − mean_m H(p_m), normalised | same on binary entropies | 1.0 (clamped) |

Least confidence and margin are the original's ascending scores mirrored inside their range (and least
confidence rescaled from [0, 1 − 1/K] to [0, 1]); mirroring and rescaling score and Laplace scale together
leave the law of the noisy top-k unchanged, so the private selection is the original's.
Logs use p·log2(p + 1e-10) as the original; its multi-label entropy had no 1e-10 and gave NaN (then always
selected) for saturated sigmoids — here every score is finite for every probability in [0, 1].
"""

import functools

import jax
import jax.numpy as jnp

LOG_OFFSET = 1e-10
# The original scores CheXpert on its 5 competition labels, the first 5 outputs.
MULTILABEL_SCORED_CLASSES = 5


def probabilities(logits: jax.Array, *, multilabel: bool) -> jax.Array:
  """Softmax over classes (single-label) or per-class sigmoid (multi-label)."""
  return jax.nn.sigmoid(logits) if multilabel else jax.nn.softmax(logits, axis=-1)


def _plogp(p: jax.Array) -> jax.Array:
  # The `where` keeps 0·log 0 = 0 even when XLA folds (1 − p) + 1e-10 into (1 + 1e-10) − p = 1 − p.
  return jnp.where(p > 0, p * jnp.log2(p + LOG_OFFSET), 0.0)


def _scored_classes(probs: jax.Array) -> jax.Array:
  return probs[..., :MULTILABEL_SCORED_CLASSES]


@functools.partial(jax.jit, static_argnames='multilabel')
def entropy(probs: jax.Array, *, multilabel: bool = False) -> jax.Array:
  """Normalised entropy in [0, 1] of probabilities [..., K] (multi-label: per-class sigmoids)."""
  if multilabel:
    p = _scored_classes(probs)
    return -jnp.mean(_plogp(p) + _plogp(1.0 - p), axis=-1)
  return -jnp.sum(_plogp(probs), axis=-1) / jnp.log2(probs.shape[-1])


@functools.partial(jax.jit, static_argnames='multilabel')
def least_confidence(probs: jax.Array, *, multilabel: bool = False) -> jax.Array:
  """1 for a flat prediction, 0 for a certain one: (1 − max p)/(1 − 1/K); multi-label via min |p − ½|."""
  if multilabel:
    return 1.0 - 2.0 * jnp.min(jnp.abs(_scored_classes(probs) - 0.5), axis=-1)
  num_classes = probs.shape[-1]
  return (1.0 - jnp.max(probs, axis=-1)) / (1.0 - 1.0 / num_classes)


@functools.partial(jax.jit, static_argnames='multilabel')
def margin(probs: jax.Array, *, multilabel: bool = False) -> jax.Array:
  """1 − (top-1 − top-2 probability): large when the two best classes are close. Single-label only."""
  if multilabel:
    raise ValueError('margin is defined for single-label predictions only')
  top2 = jax.lax.top_k(probs, 2)[0]
  return 1.0 - (top2[..., 0] - top2[..., 1])


@functools.partial(jax.jit, static_argnames='multilabel')
def bald(mc_probs: jax.Array, *, multilabel: bool = False) -> jax.Array:
  """Mutual information between prediction and weights from M dropout passes [M, ..., K], normalised.

  H(mean_m p_m) − mean_m H(p_m) with the normalised entropies of `entropy`: 0 when the passes agree.
  """
  return (entropy(jnp.mean(mc_probs, axis=0), multilabel=multilabel)
          - jnp.mean(entropy(mc_probs, multilabel=multilabel), axis=0))
