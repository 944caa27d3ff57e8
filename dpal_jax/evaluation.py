"""Test-set evaluation: accuracy for single-label tasks, mean AUC over labels for multi-label ones."""

import numpy as np

from dpal_jax import metrics
from dpal_jax.models import inference


def metric_name(task: str) -> str:
  return 'mean_auc' if task == 'multilabel' else 'accuracy'


def evaluate(model, params, x: np.ndarray, y: np.ndarray, *, task: str, batch_size: int
             ) -> tuple[str, float]:
  """(metric name, value) of `model` on (x, y), with one compiled forward shape."""
  logits = inference.predict(model, params, x, batch_size=batch_size)
  if task == 'multilabel':
    return metric_name(task), float(metrics.mean_auc(y, logits))
  return metric_name(task), float(metrics.accuracy(y, logits))
