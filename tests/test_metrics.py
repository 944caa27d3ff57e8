"""Accuracy and mean AUC against scikit-learn."""

import numpy as np
from hypothesis import given, settings, strategies as st
from sklearn import metrics as sk

from dpal_jax import metrics


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.integers(4, 60), k=st.integers(1, 6),
       ties=st.booleans())
def test_mean_auc_equals_sklearn_macro_auc(seed, n, k, ties):
  rng = np.random.default_rng(seed)
  targets = rng.integers(0, 2, (n, k)).astype(np.float32)
  targets[:2] = [[0] * k, [1] * k]  # both classes in every label
  scores = rng.normal(size=(n, k))
  if ties:
    scores = np.round(scores)
  want = sk.roc_auc_score(targets, scores, average='macro')
  assert abs(metrics.mean_auc(targets, scores) - want) < 1e-12


def test_label_with_one_class_is_left_out_not_nan():
  rng = np.random.default_rng(0)
  targets = rng.integers(0, 2, (50, 4)).astype(np.float32)
  targets[:, 2] = 0.0
  scores = rng.normal(size=(50, 4))
  aucs = metrics.label_aucs(targets, scores)
  assert np.isnan(aucs[2]) and not np.isnan(aucs[[0, 1, 3]]).any()
  want = sk.roc_auc_score(targets[:, [0, 1, 3]], scores[:, [0, 1, 3]], average='macro')
  assert abs(metrics.mean_auc(targets, scores) - want) < 1e-12
  assert metrics.mean_auc(np.ones((5, 2)), rng.normal(size=(5, 2))) == 0.5


def test_columns_select_the_competition_labels_and_soft_targets_binarise():
  rng = np.random.default_rng(1)
  targets = rng.choice([0.0, 0.2, 0.8, 1.0], (80, 14)).astype(np.float32)
  scores = rng.normal(size=(80, 14))
  want = sk.roc_auc_score(targets[:, :5] > 0.5, scores[:, :5], average='macro')
  assert abs(metrics.mean_auc(targets, scores, columns=range(5)) - want) < 1e-12


def test_accuracy_is_top1():
  logits = np.array([[0.1, 0.9], [2.0, -1.0], [0.3, 0.4]])
  assert metrics.accuracy(np.array([1, 0, 0]), logits) == 2 / 3
