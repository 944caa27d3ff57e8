"""PATE's student: public inputs, labels from the noisy teacher vote, trained without DP-SGD.

The student's inputs are public and each label it gets is a DP release (an aggregator's answer), so
training on them is post-processing: the existing `dpsgd.Trainer` runs with `private=False` (same
Poisson sampling, no clipping, no noise). What the student selects next is a function of public inputs
and released labels only, so selection costs nothing (`select`). Everything computed here from the
student — its test accuracy, its predictions, the accuracy of its labels against the public pool's
true labels — may be released.
"""

import math

import jax
import numpy as np

from dpal_jax.al import strategies
from dpal_jax.dpsgd.trainer import Trainer
from dpal_jax.models import inference


def train(trainer: Trainer, init_key: jax.Array, x: np.ndarray, y: np.ndarray, *, epochs: int,
          batch_size: int, rng: np.random.Generator, key: jax.Array):
  """A fresh student trained for `epochs` epochs on (x, y): Poisson rate B/n, ⌈epochs·n/B⌉ steps."""
  state = trainer.init(init_key, x[:1])
  n = len(x)
  if n == 0:
    return state
  rate = min(1.0, batch_size / n)
  state, _ = trainer.train_phase(
      state, x, y, sample_rates=np.full(n, rate), steps=math.ceil(epochs * n / batch_size),
      noise_multiplier=0.0, expected_batch_size=rate * n, rng=rng, key=key, private=False,
      progress=False)
  return state


def probabilities(model, params, x: np.ndarray, *, batch_size: int) -> np.ndarray:
  """float32 [len(x), C]: the student's softmax (Interactive-GNMax reads it)."""
  logits = inference.predict(model, params, x, batch_size=batch_size)
  return np.asarray(jax.nn.softmax(logits, axis=-1), np.float32)


def select(strategy: strategies.Strategy, *, model, params, x_candidates: np.ndarray,
           x_labeled: np.ndarray, k: int, rng: np.random.Generator, key: jax.Array, batch_size: int,
           mc_samples: int, mc_dropout: float) -> np.ndarray:
  """k indices into `x_candidates` to send to the teachers: uniform while the student has no labels
  (nothing to score with), else the strategy's exact top-k (the candidates are public: no noise)."""
  if len(x_labeled) == 0:
    return rng.choice(len(x_candidates), size=k, replace=False).astype(np.int64)
  return strategies.select(strategy, model=model, committee={strategies.ONLINE: params},
                           x_unlabeled=x_candidates, x_labeled=x_labeled, k=k, task='multiclass',
                           mechanism=None, rng=rng, key=key, batch_size=batch_size,
                           mc_samples=mc_samples, mc_dropout=mc_dropout)


def label_accuracy(labels: np.ndarray, true_labels: np.ndarray) -> float | None:
  """The share of released labels that equal the public pool's true labels (None when there are none)."""
  labels, true_labels = np.asarray(labels), np.asarray(true_labels)
  return float(np.mean(labels == true_labels)) if len(labels) else None
