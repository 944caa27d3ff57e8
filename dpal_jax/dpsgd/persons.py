"""Person-level DP-SGD: the privacy unit is a person with any number of records.

Neighbouring datasets differ in one person, i.e. in all of that person's records at once. So
1. the sampler draws persons, not records: person p joins a logical batch with probability q_p
   (Poisson), all its records together (`PersonSampler`); q_p is its unit's rate from the plan, the same
   for all its records;
2. the gradient is clipped per person: g_p = ∇_θ Σ_{r ∈ p} L(x_r), the gradient of the person's summed
   loss, is scaled by min(1, C / (‖g_p‖₂ + 1e-6)) and the scaled g_p are summed (`clipped_grad_sum`).
   Adding or removing a person changes the sum by at most C, whatever its number of records;
3. the usual Gaussian noise N(0, σ²C²) is added once per step and the sum divided by the expected number
   of persons E[B] = Σ_p q_p (public).
So each step is the Poisson-subsampled Gaussian mechanism over persons at rate q_p, and the ledger's
PoissonSampled(q_p, Gaussian(σ)) per step is the person's ε, however many records it holds. With one
record per person every step is the record-level step, draw for draw.

A logical batch is padded to static shapes as [persons, R] row indices (R: the most records of one
person, `sampler.SENTINEL` where a person has fewer, and for padding persons); the model sees each
person's R records as one batch, so it must treat rows independently (no BatchNorm: DP-SGD needs that
anyway). The gradient path is the general one (`jax.vmap` over persons of `jax.grad`).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np

from dpal_jax.dpsgd import clipped_grad
from dpal_jax.dpsgd import sampler
from dpal_jax.dpsgd.losses import LossFn
from dpal_jax.errors import ConfigError


class PersonLayout:
  """The records of each person among a phase's training rows, persons in order of first appearance.

  `person_of[i]` is any id of the person of row i. `rows` is int64 [P, R]: the rows of person p, then
  `sampler.SENTINEL`.
  """

  def __init__(self, person_of: np.ndarray):
    person_of = np.asarray(person_of)
    if person_of.ndim != 1 or not len(person_of):
      raise ConfigError('person ids must be a non-empty 1-D array, one per training row')
    _, first, inverse = np.unique(person_of, return_index=True, return_inverse=True)
    rank = np.empty(len(first), np.int64)
    rank[np.argsort(first, kind='stable')] = np.arange(len(first))
    self.person = rank[inverse]                       # 0..P−1, in order of first appearance
    counts = np.bincount(self.person)
    self.rows = np.full((len(counts), int(counts.max())), sampler.SENTINEL, np.int64)
    order = np.argsort(self.person, kind='stable')
    slot = np.arange(len(order)) - np.repeat(np.cumsum(counts) - counts, counts)
    self.rows[self.person[order], slot] = order

  @property
  def num_persons(self) -> int:
    return self.rows.shape[0]

  @property
  def max_records(self) -> int:
    return self.rows.shape[1]

  def person_rates(self, row_rates: np.ndarray) -> np.ndarray:
    """q_p from one rate per row; refuses rows of one person with different rates (their unit is one)."""
    row_rates = np.asarray(row_rates, np.float64)
    if row_rates.shape != self.person.shape:
      raise ConfigError(f'{row_rates.size} sample rates given for {len(self.person)} rows of persons')
    rates = row_rates[self.rows[:, 0]]
    if not np.array_equal(rates[self.person], row_rates):
      raise ConfigError('the records of one person must share one sample rate (a person is one '
                        'accounting unit): label all of a person\'s records in the same cohort')
    return rates

  def physical_persons(self, physical_batch_size: int, num_devices: int = 1) -> int:
    """Persons per physical chunk: at most `physical_batch_size` records, a power of two times the devices."""
    per_device = max(1, physical_batch_size // self.max_records // num_devices)
    return 2 ** int(math.log2(per_device)) * num_devices   # a power of two: few padded chunk shapes


class PersonSampler:
  """Draws padded logical batches of persons: chunks of int64 [persons, R] row indices (SENTINEL pads).

  `PaddedBatch.size` counts persons. Each person is included independently with its rate q_p.
  """

  def __init__(self, layout: PersonLayout, person_rates: np.ndarray, *, physical_batch_size: int,
               pad_multiple: int, rng: np.random.Generator):
    self.layout = layout
    self.draws = sampler.PoissonSampler(person_rates, physical_batch_size=physical_batch_size,
                                        pad_multiple=pad_multiple, rng=rng)

  def draw(self) -> sampler.PaddedBatch:
    batch = self.draws.draw()
    rows = tuple(np.where(c[:, None] == sampler.SENTINEL, sampler.SENTINEL,
                          self.layout.rows[np.maximum(c, 0)]) for c in batch.chunks)
    return sampler.PaddedBatch(rows, batch.size)


def person_grads(apply_fn, loss_fn: LossFn, params, x: jnp.ndarray, y: jnp.ndarray, mask: jnp.ndarray,
                 keys: jax.Array):
  """(per-record losses [P, R], per-person gradients of Σ_r mask·L with a leading person axis).

  x [P, R, ...], y [P, R, ...], mask bool [P, R]; each person's R records are one model batch.
  """
  def one(x_p, y_p, m_p, key):
    def summed(p):
      per_record = loss_fn(apply_fn(p, x_p, key), y_p)
      return jnp.sum(jnp.where(m_p, per_record, 0.0)), per_record
    (_, per_record), grads = jax.value_and_grad(summed, has_aux=True)(params)
    return per_record, grads
  return jax.vmap(one)(x, y, mask, keys)


def clipped_grad_sum(apply_fn, loss_fn: LossFn, params, x: jnp.ndarray, y: jnp.ndarray,
                     mask: jnp.ndarray, keys: jax.Array, clip_norm: float):
  """Σ_p w_p g_p over persons, g_p the gradient of person p's summed (masked) loss.

  Args:
    apply_fn: `apply_fn(params, x_p, key)` → logits of one person's records x_p [R, ...].
    loss_fn: per-record loss (`losses.per_example_loss`).
    params: the model parameters.
    x, y: [P, R, ...] records of P persons (padded to R); mask: bool [P, R], True for real records.
    keys: [P] dropout keys, one per person.
    clip_norm: C.

  Returns:
    (Σ_p w_p g_p, per-record losses [P, R]) with w_p = min(1, C / (‖g_p‖₂ + 1e-6)) and w_p = 0 for a
    person without a real record.

  *Formal guarantees*: ‖w_p g_p‖₂ ≤ C for every person, so adding or removing one person (all its
  records) changes the returned sum by at most C in L2: the sensitivity of the person-level Gaussian
  mechanism, whatever the number of records per person.
  """
  losses, grads = person_grads(apply_fn, loss_fn, params, x, y, mask, keys)
  squares = sum(jnp.sum(jnp.square(g).reshape(g.shape[0], -1), axis=1) for g in jax.tree.leaves(grads))
  weights = clipped_grad.clip_weights(jnp.sqrt(squares), clip_norm, jnp.any(mask, axis=1))
  return jax.tree.map(lambda g: jnp.tensordot(weights, g, axes=1), grads), losses

