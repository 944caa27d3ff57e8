"""PATE's noisy vote aggregators, jitted over a batch of queries, each bound to the ledger event it costs.

For a query x with vote histogram n(x) (n_j teachers predict class j; `pate.teachers`):
- LNMax (Papernot et al. 2017): argmax_j (n_j + Lap(b)), b = `laplace_scale` (the paper's 1/γ).
- GNMax (Papernot et al. 2018): argmax_j (n_j + N(0, σ₂²)).
- Confident-GNMax (2018, Alg. 1): if max_j n_j + N(0, σ₁²) ≥ T, answer GNMax with σ₂; else ⊥ (abstain).
- Interactive-GNMax (2018, Alg. 2), given the student's public class probabilities p(x): if
  max_j (n_j − M·p_j) + N(0, σ₁²) ≥ T, answer GNMax with σ₂ (the teachers disagree with the student);
  else if max_j p_j > γ, label x with the student's own argmax (no teacher answer); else ⊥.

Each noise coordinate is independent; ties of the noisy values have probability 0. The noise comes from
the JAX key passed in (the run's secret stream). What a batch costs is `Aggregator.event`: a
`privacy.events.PateRound` with one threshold test per tested query (the thresholded aggregators) and one
answer per teacher-answered query, whose data-independent dp-accounting events every partition pays.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from dpal_jax.errors import ConfigError
from dpal_jax.privacy import events

ABSTAINED, TEACHERS, STUDENT = 0, 1, 2   # `Answers.source`: who labelled a query
AGGREGATORS = events.PATE_AGGREGATORS
THRESHOLDED = ('confident_gnmax', 'interactive_gnmax')


@jax.jit
def lnmax(votes: jnp.ndarray, key: jax.Array, scale) -> jnp.ndarray:
  """int32 [q]: argmax_j (votes[i, j] + Lap(scale)) for every query i (votes [q, C])."""
  noise = scale * jax.random.laplace(key, votes.shape)
  return jnp.argmax(votes + noise, axis=-1).astype(jnp.int32)


@jax.jit
def gnmax(votes: jnp.ndarray, key: jax.Array, sigma) -> jnp.ndarray:
  """int32 [q]: argmax_j (votes[i, j] + N(0, sigma²)) for every query i."""
  noise = sigma * jax.random.normal(key, votes.shape)
  return jnp.argmax(votes + noise, axis=-1).astype(jnp.int32)


@jax.jit
def confident_gnmax(votes: jnp.ndarray, key: jax.Array, threshold, sigma1, sigma2):
  """(labels int32 [q], answered bool [q]): GNMax with σ₂ where max_j n_j + N(0, σ₁²) ≥ T."""
  test_key, answer_key = jax.random.split(key)
  answered = jnp.max(votes, axis=-1) + sigma1 * jax.random.normal(test_key, votes.shape[:1]) >= threshold
  return gnmax(votes, answer_key, sigma2), answered


@jax.jit
def interactive_gnmax(votes: jnp.ndarray, student_probs: jnp.ndarray, key: jax.Array, threshold, sigma1,
                      sigma2, weight, confidence):
  """(labels int32 [q], source int32 [q]): Alg. 2 of Papernot et al. 2018 with student weight M =
  `weight` and student confidence γ = `confidence`; source is TEACHERS, STUDENT or ABSTAINED."""
  test_key, answer_key = jax.random.split(key)
  shifted = jnp.max(votes - weight * student_probs, axis=-1)
  ask = shifted + sigma1 * jax.random.normal(test_key, votes.shape[:1]) >= threshold
  student_sure = jnp.max(student_probs, axis=-1) > confidence
  labels = jnp.where(ask, gnmax(votes, answer_key, sigma2),
                     jnp.argmax(student_probs, axis=-1).astype(jnp.int32))
  source = jnp.where(ask, TEACHERS, jnp.where(student_sure, STUDENT, ABSTAINED)).astype(jnp.int32)
  return labels, source


@dataclasses.dataclass(frozen=True)
class Answers:
  """What one batch of queries got: `labels` int32 [q] (meaningful where source != ABSTAINED) and
  `source` int32 [q] (TEACHERS, STUDENT or ABSTAINED)."""
  labels: np.ndarray
  source: np.ndarray

  @property
  def answered(self) -> int:
    """Queries the teachers answered (each pays an answer)."""
    return int(np.sum(self.source == TEACHERS))


@dataclasses.dataclass(frozen=True)
class Aggregator:
  """One aggregator with its parameters (see the module docstring); `answer` draws the noise that
  `event` accounts, so the two cannot drift apart."""
  name: str
  laplace_scale: float | None = None
  sigma1: float | None = None
  sigma2: float | None = None
  threshold: float | None = None
  student_weight: float = 0.0
  student_confidence: float = 1.0

  @property
  def thresholded(self) -> bool:
    return self.name in THRESHOLDED

  @property
  def needs_student(self) -> bool:
    return self.name == 'interactive_gnmax'

  def answer(self, votes: np.ndarray, key: jax.Array, student_probs: np.ndarray | None = None) -> Answers:
    """Answers every row of `votes` (int [q, C] histograms); `student_probs` [q, C] for Interactive."""
    v = jnp.asarray(votes, jnp.float32)
    f32 = np.float32
    if self.name == 'lnmax':
      labels, source = lnmax(v, key, f32(self.laplace_scale)), jnp.full(len(v), TEACHERS)
    elif self.name == 'gnmax':
      labels, source = gnmax(v, key, f32(self.sigma2)), jnp.full(len(v), TEACHERS)
    elif self.name == 'confident_gnmax':
      labels, answered = confident_gnmax(v, key, f32(self.threshold), f32(self.sigma1), f32(self.sigma2))
      source = jnp.where(answered, TEACHERS, ABSTAINED)
    else:
      if student_probs is None:
        raise ValueError('interactive_gnmax needs the student\'s class probabilities of the queries')
      labels, source = interactive_gnmax(
          v, jnp.asarray(student_probs, jnp.float32), key, f32(self.threshold), f32(self.sigma1),
          f32(self.sigma2), f32(self.student_weight), f32(self.student_confidence))
    return Answers(np.asarray(labels, np.int32), np.asarray(source, np.int32))

  def event(self, round_: int, *, tested: int, answered: int) -> events.PateRound:
    """The ledger event of a round of `tested` queries of which the teachers answered `answered`."""
    return events.PateRound(
        round=round_, aggregator=self.name, answered=int(answered),
        tested=int(tested) if self.thresholded else 0,
        sigma1=self.sigma1 if self.thresholded else None,
        sigma2=None if self.name == 'lnmax' else self.sigma2,
        threshold=self.threshold if self.thresholded else None,
        laplace_scale=self.laplace_scale if self.name == 'lnmax' else None)

  def worst_case(self, round_: int, queries: int) -> events.PateRound:
    """The round's event if the teachers answered every one of `queries` (what to check before it)."""
    return self.event(round_, tested=queries, answered=queries)


def from_config(pate) -> Aggregator:
  """The aggregator of config section `pate` (`pate.aggregator` and the parameters it reads)."""
  name = pate.aggregator
  if name not in AGGREGATORS:
    raise ConfigError(f'pate.aggregator {name!r} is unknown; choose one of {", ".join(AGGREGATORS)}')
  needed = {'lnmax': ('laplace_scale',), 'gnmax': ('sigma2',)}.get(name, ('sigma1', 'sigma2', 'threshold'))
  for field in needed:
    if pate.get(field) is None:
      raise ConfigError(f'pate.{field} is unset; pate.aggregator {name!r} needs it')
  if name == 'interactive_gnmax' and not 0 <= pate.student_confidence <= 1:
    raise ConfigError(f'pate.student_confidence ({pate.student_confidence}) must lie in [0, 1]')
  return Aggregator(
      name, laplace_scale=float(pate.laplace_scale) if name == 'lnmax' else None,
      sigma1=float(pate.sigma1) if name in THRESHOLDED else None,
      sigma2=None if name == 'lnmax' else float(pate.sigma2),
      threshold=float(pate.threshold) if name in THRESHOLDED else None,
      student_weight=float(pate.student_weight), student_confidence=float(pate.student_confidence))
