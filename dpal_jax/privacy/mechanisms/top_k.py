"""What every top-k release shares: clamping scores to [0, Δ] and the exact (non-private) top-k.

A top-k mechanism releases one noisy score per candidate and keeps the k largest; the ranking is
post-processing of the released vector, so its privacy is that of the noisy scores alone. The scores are
clamped first so that every candidate's score lies in [0, Δ] whatever the model does: NaN (a diverged
model) counts as 0 and +inf as Δ, so a NaN can never force a pick. `exact_top_k` is the ranking itself;
alone, on unnoised scores, it is not private.
"""

import numpy as np

from dpal_jax.errors import ConfigError


def clamp_scores(scores: np.ndarray, clamp: float) -> np.ndarray:
  """Scores as float64 in [0, clamp]; NaN → 0, ±inf → the nearest end.

  >>> clamp_scores(np.array([0.5, 1.5, np.nan, -np.inf]), 0.8).tolist()
  [0.5, 0.8, 0.0, 0.0]
  """
  if not clamp > 0:
    raise ValueError(f'clamp must be positive, got {clamp}')
  scores = np.nan_to_num(np.asarray(scores, np.float64), nan=0.0, posinf=clamp, neginf=0.0)
  return np.clip(scores, 0.0, clamp)


def exact_top_k(scores: np.ndarray, k: int) -> np.ndarray:
  """Indices of the k largest scores, largest first (ties by index); NaN ranks last. Not private.

  >>> exact_top_k(np.array([0.3, np.nan, 0.9, 0.1, 0.9]), 3).tolist()
  [2, 4, 0]
  """
  scores = np.nan_to_num(np.asarray(scores, np.float64), nan=-np.inf)
  check_k(k, len(scores))
  return np.argsort(-scores, kind='stable')[:k]


def check_k(k: int, n: int) -> None:
  """Raises ConfigError unless 0 ≤ k ≤ n (the query size against the unlabeled pool)."""
  if not 0 <= k <= n:
    raise ConfigError(f'al.query_sizes asks for {k} examples but the pool has {n} unlabeled')
