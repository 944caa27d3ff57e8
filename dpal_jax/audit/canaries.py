"""Canaries: the records an audit plants, and the public coins that decide which of them are real.

- **The coin.** Canary i is included with probability ½, independently (S_i ~ Bernoulli(½)). The coin is
  the audit's own randomness: the auditor knows it, the mechanism must not depend on it except through
  the included records.
- **Gradient canaries** (Dirac, `audit.canary_kind = 'gradient'`, the default). The audited model is the
  config's model beside one extra Dense layer `canary` of m weights c ∈ R^m (`DiracCanaryModel`). Canary
  i is an input row that carries its index in its first pixel (CODE + i; data pixels lie in [−1, 1]) and
  is otherwise 0; its logits are (SLOPE·c_i − OFFSET, 0, …, 0) with label 0, so its loss gradient is
  SLOPE·(p₀ − 1)·e_i: only coordinate c_i, of norm ≈ SLOPE ≥ C while |SLOPE·c_i| ≪ OFFSET, so clipped it
  is exactly −C·e_i (a Dirac gradient). Real rows never touch c (their one-hot is 0). The canary thus goes
  through the engine's own sampling, clipping and noise, and nothing else interferes with its coordinate.
- **Input canaries** (`'input'`). x_i ∈ {−a, +a}^d with independent signs, far from the data and nearly
  orthogonal to one another; y_i uniform over the classes. Weaker (their gradients overlap the data's and
  each other's), but they need no change to the model: the black-box end of the audit.
An included canary of either kind joins the labeled set as one more member of the cohort whose rate it
shares.
- **Query canaries** (score space). A candidate slot whose score is planted at the clamp bound Δ (the most
  a record can score) when the coin includes it, and 0 (the placeholder of an absent record) otherwise:
  the two neighbours of the selection mechanism's adjacency that are furthest apart.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

KINDS = ('gradient', 'input')
INPUT_SCALE = 1.0   # a: input canary pixels are ±a (the data's pixels lie in [−1, 1])
CODE = 2.0          # a gradient canary's first pixel is CODE + its index
SLOPE = 10.0        # the canary logit's slope in c_i: the unclipped gradient norm, ≥ 10·C for C ≤ 1
OFFSET = 50.0       # keeps p₀ ≈ e^{−50}, so the gradient stays SLOPE·e_i while |SLOPE·c_i| ≪ OFFSET


class DiracCanaryModel(nn.Module):
  """`base` for data rows; for gradient canary rows the logits (SLOPE·c_i − OFFSET, 0, …, 0)."""
  base: nn.Module
  num_canaries: int

  @nn.compact
  def __call__(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    code = x.reshape((x.shape[0], -1))[:, 0]
    is_canary = code > CODE - 0.5
    index = jnp.clip(jnp.round(code - CODE), 0, self.num_canaries - 1).astype(jnp.int32)
    one_hot = jax.nn.one_hot(index, self.num_canaries) * is_canary[:, None]
    weight = nn.Dense(1, use_bias=False, kernel_init=nn.initializers.zeros, name='canary')(one_hot)
    logits = self.base(jnp.where(is_canary.reshape((-1,) + (1,) * (x.ndim - 1)), 0.0, x), train=train)
    own = jnp.zeros_like(logits).at[:, 0].set(SLOPE * weight[:, 0] - OFFSET)
    return jnp.where(is_canary[:, None], own, logits)

  def embed(self, x: jnp.ndarray, train: bool = False) -> jnp.ndarray:
    return self.base.embed(x, train=train)


def gradient_canaries(m: int, sample_shape: tuple) -> tuple[np.ndarray, np.ndarray]:
  """(x [m, *sample_shape] float32: zeros but the first pixel CODE + i, y [m] int32 zeros)."""
  x = np.zeros((m, int(np.prod(sample_shape))), np.float32)
  x[:, 0] = CODE + np.arange(m)
  return x.reshape((m, *sample_shape)), np.zeros(m, np.int32)


def coin(m: int, rng: np.random.Generator) -> np.ndarray:
  """m independent fair coins (bool): which canaries are included.

  *Formal guarantees*: independent Bernoulli(½) draws from `rng`, as the one-run bound assumes; draw them
  from the run's own (OS-entropy or seeded) generator, never from anything the mechanism reads.
  """
  if m < 2:
    raise ValueError(f'an audit needs at least 2 canaries, got {m}')
  return rng.random(m) < 0.5


def input_canaries(m: int, sample_shape: tuple, num_classes: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
  """(x [m, *sample_shape] float32 of ±INPUT_SCALE, y [m] int32 uniform labels)."""
  x = np.where(rng.random((m, *sample_shape)) < 0.5, -INPUT_SCALE, INPUT_SCALE).astype(np.float32)
  return x, rng.integers(0, num_classes, size=m).astype(np.int32)


def planted_scores(included: np.ndarray, clamp: float) -> np.ndarray:
  """The query canaries' scores: Δ = `clamp` where included, 0 elsewhere (float64).

  >>> planted_scores(np.array([True, False]), 0.8).tolist()
  [0.8, 0.0]
  """
  return np.where(included, float(clamp), 0.0)
