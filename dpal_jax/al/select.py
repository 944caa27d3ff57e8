"""Private (and exact) top-k selection of candidates from their scores, on the host in float64.

Privacy argument, per person. A candidate's score depends only on that candidate and on the current model
(itself a DP release of the labeled data, so free to use). Each mechanism clamps every score to [0, Δ]
and releases it once per query with noise calibrated to Δ; the returned top-k is post-processing of the
released vector. So one query costs each scored candidate one run of the mechanism:
- `laplace_release`: Laplace(Δ/ε) — ε-DP per candidate, dp-accounting `LaplaceDpEvent(1/ε)`;
- `gaussian_release`: N(0, (σΔ)²) — `GaussianDpEvent(σ)`, or with candidates Poisson-sampled at rate q,
  `PoissonSampledDpEvent(q, GaussianDpEvent(σ))`, which composes more tightly than Laplace over many rounds.
Adjacency: the argument replaces one candidate's record by another (any score in [0, Δ]), or, for
add/remove, by a placeholder with score 0 in the same slot. Removing the slot altogether also changes which
*other* candidates enter the top-k (spec/dpal.md §b); the slot set, i.e. the pool's indices, is public here.
Scores that are NaN (a diverged model) count as 0, +inf as Δ, so the bound holds for every input and a NaN
can never force a pick (the original's NaNs sorted first). No floating-point-attack mitigation (snapping).
"""

import numpy as np

from dpal_jax import validate
from dpal_jax.errors import ConfigError


def clamp_scores(scores: np.ndarray, clamp: float) -> np.ndarray:
  """Scores as float64 in [0, clamp]; NaN → 0, ±inf → the nearest end."""
  if not clamp > 0:
    raise ValueError(f'clamp must be positive, got {clamp}')
  scores = np.nan_to_num(np.asarray(scores, np.float64), nan=0.0, posinf=clamp, neginf=0.0)
  return np.clip(scores, 0.0, clamp)


def laplace_release(scores: np.ndarray, *, clamp: float, epsilon: float,
                    rng: np.random.Generator) -> np.ndarray:
  """Clamped scores plus Laplace(clamp/ε) each: ε-DP per candidate (sensitivity clamp)."""
  if not epsilon > 0:
    raise ValueError(f'the query epsilon must be positive, got {epsilon}')
  clamped = clamp_scores(scores, clamp)
  return clamped + rng.laplace(0.0, clamp / epsilon, size=clamped.shape)


def gaussian_release(scores: np.ndarray, *, clamp: float, noise_multiplier: float,
                     rng: np.random.Generator, sample_rate: float | None = None) -> np.ndarray:
  """Clamped scores plus N(0, (noise_multiplier·clamp)²) each: Gaussian mechanism of sensitivity clamp.

  With `sample_rate` q, each candidate's score enters only with probability q (independently, Poisson) and
  counts as 0 otherwise; every candidate still gets noise, so a candidate's release is the mixture
  (1−q)·N(0, (σΔ)²) + q·N(s, (σΔ)²) against N(0, (σΔ)²): the Poisson-subsampled Gaussian.
  """
  if not noise_multiplier > 0:
    raise ValueError(f'the query noise_multiplier must be positive, got {noise_multiplier}')
  clamped = clamp_scores(scores, clamp)
  if sample_rate is not None:
    if not 0 < sample_rate <= 1:
      raise ValueError(f'the query sample_rate must be in (0, 1], got {sample_rate}')
    clamped = np.where(rng.random(clamped.shape) < sample_rate, clamped, 0.0)
  return clamped + rng.normal(0.0, noise_multiplier * clamp, size=clamped.shape)


def exact_top_k(scores: np.ndarray, k: int) -> np.ndarray:
  """Indices of the k largest scores, largest first (ties by index); NaN ranks last. Not private."""
  scores = np.nan_to_num(np.asarray(scores, np.float64), nan=-np.inf)
  _check_k(k, len(scores))
  return np.argsort(-scores, kind='stable')[:k]


def laplace_top_k(scores: np.ndarray, k: int, *, clamp: float, epsilon: float,
                  rng: np.random.Generator) -> np.ndarray:
  """Top-k of `laplace_release`: ε-DP per candidate per query (see the module docstring)."""
  _check_k(k, len(scores))
  return exact_top_k(laplace_release(scores, clamp=clamp, epsilon=epsilon, rng=rng), k)


def gaussian_top_k(scores: np.ndarray, k: int, *, clamp: float, noise_multiplier: float,
                   rng: np.random.Generator, sample_rate: float | None = None) -> np.ndarray:
  """Top-k of `gaussian_release`: (Poisson-sampled) Gaussian mechanism per candidate per query."""
  _check_k(k, len(scores))
  return exact_top_k(gaussian_release(scores, clamp=clamp, noise_multiplier=noise_multiplier, rng=rng,
                                      sample_rate=sample_rate), k)


def private_top_k(scores: np.ndarray, k: int, *, clamp: float, query,
                  rng: np.random.Generator) -> np.ndarray:
  """Top-k through the mechanism a plan query names: `query.mechanism` is 'laplace' (with `epsilon`) or
  'gaussian' (with `noise_multiplier` and optional `sample_rate`), the parameters the ledger accounts."""
  if query.mechanism == 'laplace':
    return laplace_top_k(scores, k, clamp=clamp, epsilon=query.epsilon, rng=rng)
  if query.mechanism == 'gaussian':
    return gaussian_top_k(scores, k, clamp=clamp, noise_multiplier=query.noise_multiplier, rng=rng,
                          sample_rate=getattr(query, 'sample_rate', None))
  raise validate.unknown('privacy.query_mechanism', query.mechanism, ('laplace', 'gaussian'))


def _check_k(k: int, n: int) -> None:
  if not 0 <= k <= n:
    raise ConfigError(f'al.query_sizes asks for {k} examples but the pool has {n} unlabeled')
