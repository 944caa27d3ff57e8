"""Person-level DP-SGD (dpsgd/persons.py): persons of 1–5 records, the clipped-sum bound per person on a
real model, and the record-level step recovered draw for draw at one record per person."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from dpal_jax.dpsgd import losses, persons, sampler
from dpal_jax.dpsgd.trainer import Trainer
from dpal_jax.errors import ConfigError
from dpal_jax.models.mlp import MLP

LOSS = losses.per_example_loss('multiclass')
MODEL = MLP(num_classes=3, hidden=(16,))
RNG = np.random.default_rng(0)
SIZES = np.array([1, 5, 2, 3, 4, 1, 5, 2])                        # records of persons 0..7
PERSON_OF = RNG.permutation(np.repeat(np.arange(8) * 7 + 3, SIZES))  # any ids, records in any order
X = (RNG.normal(size=(len(PERSON_OF), 8, 8, 1)) * 30).astype(np.float32)   # every gradient above C
Y = RNG.integers(0, 3, len(PERSON_OF)).astype(np.int32)
CLIP = 0.5


def apply_fn(params, x, key):
  return MODEL.apply({'params': params}, x, train=True, rngs={'dropout': key})


def _flat_norm(tree) -> float:
  return math.sqrt(sum(float(jnp.sum(leaf ** 2)) for leaf in jax.tree.leaves(tree)))


@jax.jit
def _summed_gradient(params, x, y):
  return jax.grad(lambda p: LOSS(MODEL.apply({'params': p}, x), y).sum())(params)


def _person_gradient(params, rows):
  """∇ Σ_r L(x_r) over one person's records, as one batch without padding (no persons.py code)."""
  return _summed_gradient(params, X[np.asarray(rows)], Y[np.asarray(rows)])


@pytest.fixture(scope='module')
def setup():
  layout = persons.PersonLayout(PERSON_OF)
  params = MODEL.init(jax.random.key(0), X[:1])['params']
  return layout, params


def test_the_layout_holds_every_record_of_every_person_once(setup):
  layout, _ = setup
  assert layout.num_persons == 8 and layout.max_records == 5
  real = layout.rows[layout.rows != sampler.SENTINEL]
  assert sorted(real.tolist()) == list(range(len(PERSON_OF)))
  for p in range(8):
    rows = layout.rows[p][layout.rows[p] != sampler.SENTINEL]
    assert len(set(PERSON_OF[rows])) == 1 and len(rows) == (PERSON_OF == PERSON_OF[rows[0]]).sum()


def test_each_persons_summed_gradient_is_clipped_to_c_and_a_person_moves_the_sum_by_at_most_c(setup):
  layout, params = setup
  chunk = layout.rows                                 # all 8 persons, [8, 5] with padding
  xb, yb, mask = X[np.maximum(chunk, 0)], Y[np.maximum(chunk, 0)], chunk != sampler.SENTINEL
  keys = jax.random.split(jax.random.key(1), 8)
  _, grads = jax.jit(persons.person_grads, static_argnums=(0, 1))(apply_fn, LOSS, params, xb, yb, mask, keys)
  clipped_sum = jax.jit(persons.clipped_grad_sum, static_argnums=(0, 1))
  total, per_record = clipped_sum(apply_fn, LOSS, params, xb, yb, mask, keys, CLIP)
  expected = jax.tree.map(jnp.zeros_like, params)
  for p in range(8):
    rows = chunk[p][mask[p]]
    reference = _person_gradient(params, rows)        # the gradient of the person's summed loss
    mine = jax.tree.map(lambda g, p=p: g[p], grads)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-5), mine, reference)
    norm = _flat_norm(reference)
    assert norm > CLIP                                # so clipping binds
    clipped = jax.tree.map(lambda g, norm=norm: g * min(1.0, CLIP / (norm + 1e-6)), reference)
    assert _flat_norm(clipped) <= CLIP * (1 + 1e-5)   # the per-person bound, whatever its records
    expected = jax.tree.map(jnp.add, expected, clipped)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-5), total, expected)
  assert per_record.shape == (8, 5)
  # Neighbouring datasets: without person 1 (5 records) the sum moves by at most C, not 5·C.
  without = mask.copy()
  without[1] = False
  smaller, _ = clipped_sum(apply_fn, LOSS, params, xb, yb, without, keys, CLIP)
  assert _flat_norm(jax.tree.map(jnp.subtract, total, smaller)) <= CLIP * (1 + 1e-4)
  # Record-level clipping of the same 5 records lets the person move the sum by more than C.
  record_clipped = jax.tree.map(jnp.zeros_like, params)
  for r in chunk[1][mask[1]]:
    g = _person_gradient(params, [r])
    record_clipped = jax.tree.map(lambda t, x, f=min(1.0, CLIP / (_flat_norm(g) + 1e-6)): t + f * x,
                                  record_clipped, g)
  assert _flat_norm(record_clipped) > 1.5 * CLIP


def test_persons_are_sampled_whole_at_their_rate(setup):
  layout, _ = setup
  rates = np.linspace(0.1, 0.9, 8)
  draw = persons.PersonSampler(layout, rates, physical_batch_size=4, pad_multiple=2,
                               rng=np.random.default_rng(3))
  counts = np.zeros(8)
  for _ in range(2000):
    batch = draw.draw()
    rows = np.concatenate(batch.chunks)
    picked = [p for p in range(8) if np.isin(layout.rows[p][0], rows)]
    for p in picked:   # all of a picked person's records come along, in one row of the batch
      assert any(np.array_equal(r, layout.rows[p]) for r in rows)
    assert batch.size == len(picked)
    counts[picked] += 1
  np.testing.assert_allclose(counts / 2000, rates, atol=0.04)


def test_rows_of_one_person_with_different_rates_are_refused(setup):
  layout, _ = setup
  rates = np.full(len(PERSON_OF), 0.2)
  rates[np.flatnonzero(PERSON_OF == PERSON_OF[layout.rows[1][0]])[0]] = 0.3
  with pytest.raises(ConfigError, match='records of one person must share one sample rate'):
    layout.person_rates(rates)


def test_one_record_per_person_is_the_record_level_phase_draw_for_draw(noise_multiplier=1.3):
  """The same rng, key and rates: person-level and record-level phases give the same parameters."""
  n = 40
  x = (np.random.default_rng(1).normal(size=(n, 8, 8, 1)) * 5).astype(np.float32)
  y = np.random.default_rng(2).integers(0, 3, n).astype(np.int32)
  rates = np.where(np.arange(n) < 25, 0.2, 0.35)
  out = []
  for person_of in (None, np.arange(n) * 3 + 11):
    trainer = Trainer(MODEL, optax.adam(1e-2), task='multiclass', clip_norm=CLIP, physical_batch_size=16,
                      grad_method='vmap', pad_multiple=16)
    state = trainer.init(jax.random.key(0), x)
    state, stats = trainer.train_phase(
        state, x, y, sample_rates=rates, steps=4, noise_multiplier=noise_multiplier,
        expected_batch_size=float(rates.sum()), rng=np.random.default_rng(7), key=jax.random.key(5),
        progress=False, person_of=person_of)
    out.append((jax.tree.map(np.asarray, state.params), stats['mean_batch_size']))
  assert out[0][1] == out[1][1]
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), out[0][0], out[1][0])
