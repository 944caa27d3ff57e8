"""Test metrics on the host: top-1 accuracy, and mean ROC AUC over labels for multi-label tasks.

AUC is the Mann–Whitney statistic (average ranks for ties), which equals `sklearn.metrics.
roc_auc_score` per label. A label whose targets hold one class only has no AUC (sklearn raises): it is
left out of the mean, and when no label has both classes the mean is 0.5, the chance level, so a small
or one-sided test set never yields NaN.
"""

from collections.abc import Sequence

import numpy as np
from scipy import stats


def accuracy(labels: np.ndarray, logits: np.ndarray) -> float:
  """Fraction of rows whose arg-max logit is the int label."""
  return float(np.mean(np.argmax(np.asarray(logits), axis=-1) == np.asarray(labels)))


def label_aucs(targets: np.ndarray, scores: np.ndarray) -> np.ndarray:
  """ROC AUC per column of [N, K] targets/scores; NaN where a column has one class only.

  Targets are binary; soft targets (e.g. uncertain CheXpert labels) count as positive when > 0.5.
  Scores may be logits or probabilities (AUC depends only on their order).
  """
  positive = np.asarray(targets) > 0.5
  ranks = stats.rankdata(np.asarray(scores, np.float64), axis=0)
  n_pos = positive.sum(axis=0)
  n_neg = len(positive) - n_pos
  rank_sum = np.where(positive, ranks, 0.0).sum(axis=0)
  with np.errstate(invalid='ignore', divide='ignore'):
    auc = (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
  return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def mean_auc(targets: np.ndarray, scores: np.ndarray, columns: Sequence[int] | None = None) -> float:
  """Mean AUC over `columns` (all labels by default; CheXpert: its 5 competition labels).

  Labels with one class only are skipped; 0.5 when none is left (see the module docstring).
  """
  targets, scores = np.asarray(targets), np.asarray(scores)
  if columns is not None:
    targets, scores = targets[:, list(columns)], scores[:, list(columns)]
  aucs = label_aucs(targets, scores)
  defined = aucs[~np.isnan(aucs)]
  return float(defined.mean()) if defined.size else 0.5
