"""Query scores designed for private selection, and the fidelity ceiling no per-candidate release can pass.

A private top-k (`privacy.mechanisms`) adds noise calibrated on the score range [0, Δ] to every candidate's
score. What it can still select depends on how much of that range separates the candidates worth labeling
from the rest: the original's entropy spreads the pool over [0, 0.8], so most candidates sit a small
fraction of Δ apart and the noise (Laplace scale Δ/ε_q) swamps the difference. The scores here spend the
whole range on one question — "is this candidate uncertain?" — with thresholds fixed by public
constants (half of the largest entropy log K, a top-class probability of one half), never by the pool's
scores (docs/selection.md):

| strategy | score | Δ |
|---|---|---|
| `uncertain` | 1 if the normalised entropy H(p)/log K ≥ ½, else 0 (multi-label: mean binary entropy) | 1 |
| `no_majority` | 1 if the top class has probability < ½, else 0 (single-label only) | 1 |
| `entropy_half` | the normalised entropy, clamped to the public range [0, ½] | ½ |

*Sensitivity* (each score, any mechanism of `privacy.mechanisms`): a candidate's score is a function of
that candidate's input and of the current model alone — the model is itself a DP release of the labeled
data, so to the query it is public. Replacing one candidate's record changes only its own coordinate of the
score vector, and that coordinate lies in {0, 1} (`uncertain`, `no_majority`: the threshold maps every
probability vector, NaN included, to 0 or 1) or in [0, ½] after the clamp (`entropy_half`); so it moves
by at most Δ = 1 (Δ = ½), the bound the mechanism calibrates its noise on. Add/remove puts a placeholder of
score 0 in the candidate's public slot, also within [0, Δ]. Tests check both on extreme and neighbouring
inputs (tests/al/test_private_scores.py).

*Fidelity ceiling*: selection fidelity (the share of the k picks among the exact top-2k) of a per-candidate
(ε, δ)-DP release that treats candidates with equal scores alike is at most `fidelity_ceiling(ε, k, N, δ)`
(`privacy.split`, re-exported here)
whatever the score — the reason no score design lifts fidelity far at ε_q = 0.5 (docs/selection.md).
"""

import functools

import jax
import jax.numpy as jnp

from dpal_jax.al import uncertainty
from dpal_jax.privacy.split import fidelity_ceiling  # pylint: disable=unused-import  (re-exported)

UNCERTAIN_THRESHOLD = 0.5       # of the normalised entropy: half of log K, K the (public) number of classes
MAJORITY = 0.5                  # a top-class probability below one half: no class has the majority
ENTROPY_HALF_CLAMP = 0.5        # the public clamp of `entropy_half`


@functools.partial(jax.jit, static_argnames='multilabel')
def uncertain(probs: jax.Array, *, multilabel: bool = False) -> jax.Array:
  """1.0 where the normalised entropy of the prediction is at least ½ (`UNCERTAIN_THRESHOLD`), else 0.0.

  Sensitivity 1: every candidate's score is 0 or 1, a function of its own prediction only (NaN
  probabilities give 0). Multi-label: the mean binary entropy of the scored classes, as `entropy`.
  """
  h = uncertainty.entropy(probs, multilabel=multilabel)
  return jnp.where(h >= UNCERTAIN_THRESHOLD, 1.0, 0.0)


@functools.partial(jax.jit, static_argnames='multilabel')
def no_majority(probs: jax.Array, *, multilabel: bool = False) -> jax.Array:
  """1.0 where no class has probability ½ or more (`MAJORITY`), else 0.0. Single-label only.

  Sensitivity 1: every candidate's score is 0 or 1, a function of its own prediction only (NaN
  probabilities give 0).
  """
  if multilabel:
    raise ValueError('no_majority is defined for single-label predictions only')
  return jnp.where(jnp.max(probs, axis=-1) < MAJORITY, 1.0, 0.0)
