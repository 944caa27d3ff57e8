"""Per-example losses by task (config `dataset` → `Dataset.task`): one value per row, never a mean.

The DP step needs per-example losses so that each example's gradient can be clipped on its own.
"""

from collections.abc import Callable

import jax.numpy as jnp
import optax

from dpal_jax import validate

LossFn = Callable[[jnp.ndarray, jnp.ndarray], jnp.ndarray]


def _multiclass(logits: jnp.ndarray, labels: jnp.ndarray) -> jnp.ndarray:
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels.astype(jnp.int32))


def _multilabel(logits: jnp.ndarray, targets: jnp.ndarray) -> jnp.ndarray:
  return optax.sigmoid_binary_cross_entropy(logits, targets).mean(axis=-1)


_LOSSES = {'multiclass': _multiclass, 'multilabel': _multilabel}


def per_example_loss(task: str) -> LossFn:
  """`(logits [B, K], targets) -> [B]`: softmax CE on int labels, or sigmoid BCE averaged over K."""
  return _LOSSES[validate.choice('task', task, _LOSSES)]
