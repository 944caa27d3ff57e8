"""The phase loop: Poisson logical batches → physical chunks → one private (or plain) update each.

Per logical batch: the host sampler draws indices with the phase's per-example rates (from the Plan,
never re-derived here) and pads them; each physical chunk's rows are gathered on the host and sent once;
a jitted, buffer-donating `accumulate` adds the chunk's clipped-gradient sum to an on-device accumulator
(no host round-trip inside a logical batch); a jitted `update` adds N(0, σ²C²) once, divides by the
expected batch size (public, so the sensitivity stays C / E[B]) and applies the optax update.
Executables are compiled ahead of time per chunk shape, so compiles are counted and timed exactly.
"""

import math
import time
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from dpal_jax import validate
from dpal_jax.dpsgd import clipped_grad, conv_norms, ghost_norm, losses, noise, persons, sampler, sharding
from dpal_jax.dpsgd.train_state import EMATrainState, TrainState, ema_update
from dpal_jax.errors import ConfigError

GRAD_METHODS = ('auto', 'vmap', 'ghost', 'conv', 'conv_two_pass')


class Trainer:
  """DP-SGD (or plain SGD with the same sampling) for a Flax classifier.

  `grad_method`: 'vmap' (any model), 'ghost' (Dense-only models, see ghost_norm.py), 'conv'
  (Conv/Dense/GroupNorm models without dropout, see conv_norms.py: book-keeping, one backward pass),
  'conv_two_pass' (the same models, ghost clipping: a norms-only backward, then a second one) or
  'auto' (ghost when the model is Dense-only, else conv when it qualifies, else vmap; resolved in
  `init`). `pad_multiple` defaults to `sampler.choose_pad_multiple`. With `ema_decay` (LHD: 0.999)
  the state is an `EMATrainState` whose `ema` follows the parameters after every step
  (`train_state.ema_update`; post-processing of the private iterates, so free); without it (the
  default) nothing about the step changes.
  """

  def __init__(self, model: nn.Module, optimizer: optax.GradientTransformation, *, task: str,
               clip_norm: float, physical_batch_size: int, grad_method: str = 'auto', mesh=None,
               pad_multiple: int | None = None, ema_decay: float | None = None):
    if not clip_norm > 0:
      raise ConfigError(f'train.clip_norm ({clip_norm}) must be positive (math.inf disables clipping)')
    if physical_batch_size < 1:
      raise ConfigError(f'train.physical_batch_size ({physical_batch_size}) must be at least 1')
    validate.choice('train.grad_method', grad_method, GRAD_METHODS)
    self.model = model
    self.optimizer = optimizer
    self.loss_fn = losses.per_example_loss(task)
    self.clip_norm = float(clip_norm)
    self.physical_batch_size = physical_batch_size
    self.grad_method = grad_method
    self.mesh = mesh
    self.num_devices = 1 if mesh is None else mesh.devices.size
    if physical_batch_size % self.num_devices:
      raise ConfigError(f'train.physical_batch_size ({physical_batch_size}) must be a multiple of '
                        f'the number of devices ({self.num_devices})')
    self.pad_multiple = pad_multiple
    self.ema_decay = ema_decay
    self.compiles = 0
    self.compile_seconds = 0.0
    self._executables = {}
    self._accumulator = None

  def apply_train(self, params, x: jnp.ndarray, key: jax.Array) -> jnp.ndarray:
    """Training-mode logits (dropout on, stream 'dropout' from `key`)."""
    return self.model.apply({'params': params}, x, train=True, rngs={'dropout': key})

  def init(self, key: jax.Array, sample_x, params=None) -> TrainState:
    """Fresh optimizer state on fresh (or the given, e.g. pretrained) parameters.

    Also resolves grad_method 'auto' and checks 'ghost' and 'conv'.
    """
    x_one = jnp.asarray(sample_x[:1])
    if params is None:
      params = self.model.init(key, x_one)['params']
    dense_only = ghost_norm.is_dense_only(self.apply_train, params, x_one, key)
    if self.grad_method == 'ghost' and not dense_only:
      raise ConfigError("train.grad_method 'ghost' needs a model made only of Dense layers; "
                        f"{type(self.model).__name__} is not: use 'vmap' or 'auto'")
    conv_ok = conv_norms.is_supported(self.apply_train, params, x_one, key)
    if self.grad_method in ('conv', 'conv_two_pass') and not conv_ok:
      raise ConfigError(f"train.grad_method '{self.grad_method}' needs a model whose parameters all "
                        "belong to Conv, Dense and GroupNorm layers, without dropout; "
                        f"{type(self.model).__name__} is not (set model.dropout = 0 or use 'vmap' or "
                        "'auto')")
    if self.grad_method == 'auto':
      self.grad_method = 'ghost' if dense_only else 'conv' if conv_ok else 'vmap'
    if self.ema_decay is not None:
      return sharding.replicate(EMATrainState.create(params, self.optimizer), self.mesh)
    return sharding.replicate(TrainState.create(params, self.optimizer), self.mesh)

  # Device functions (jitted and compiled ahead of time in `_compiled`).

  def _private_sum(self, params, x, y, mask, keys):
    fn = {'ghost': ghost_norm.ghost_clipped_grad_sum, 'conv': conv_norms.conv_clipped_grad_sum,
          'conv_two_pass': conv_norms.conv_two_pass_clipped_grad_sum,
          'vmap': clipped_grad.clipped_grad_sum}[self.grad_method]
    return fn(self.apply_train, self.loss_fn, params, x, y, mask, keys, self.clip_norm)

  def _plain_sum(self, params, x, y, mask, keys):
    """Σ_i ∇L_i over real rows, no clipping: one batched forward and backward (the fastest
    non-private step). Dropout masks come from `keys[0]`, so with dropout they depend on how the
    batch is chunked or sharded (the private paths' do not)."""
    def total(p):
      per_example = self.loss_fn(self.apply_train(p, x, keys[0]), y)
      return jnp.sum(jnp.where(mask, per_example, 0.0)), per_example
    (_, per_example), grads = jax.value_and_grad(total, has_aux=True)(params)
    return grads, per_example

  def _person_sum(self, params, x, y, mask, keys):
    """Person-level chunks (x [persons, R, ...], `persons.py`): Σ over persons of the clipped gradient of
    each person's summed loss."""
    return persons.clipped_grad_sum(self.apply_train, self.loss_fn, params, x, y, mask, keys,
                                    self.clip_norm)

  def _plain_person_sum(self, params, x, y, mask, keys):
    """Person-level chunks without privacy: the plain sum over their records."""
    flat = lambda a: a.reshape((-1, *a.shape[2:]))
    grads, per_record = self._plain_sum(params, flat(x), flat(y), flat(mask), keys)
    return grads, per_record.reshape(mask.shape)

  def _accumulate_fn(self, private: bool, by_person: bool = False) -> Callable:
    fn = ((self._person_sum if private else self._plain_person_sum) if by_person
          else self._private_sum if private else self._plain_sum)
    grad_sum = sharding.data_parallel(fn, self.mesh)

    def accumulate(acc, params, x, y, mask, step_key, chunk_index):
      keys = jax.random.split(jax.random.fold_in(step_key, chunk_index + 1), x.shape[0])
      grads, per_example = grad_sum(params, x, y, mask, keys)
      loss_sum = acc[1] + jnp.sum(jnp.where(mask, per_example, 0.0))
      return jax.tree.map(jnp.add, acc[0], grads), loss_sum
    return accumulate

  def _update_fn(self, private: bool) -> Callable:
    def update(state, acc, step_key, noise_std, expected_batch_size):
      grads, loss_sum = acc
      if private:
        grads = noise.add_gaussian_noise(grads, jax.random.fold_in(step_key, 0), noise_std)
      grads = jax.tree.map(lambda g: g / expected_batch_size, grads)
      updates, opt_state = self.optimizer.update(grads, state.opt_state, state.params)
      params = optax.apply_updates(state.params, updates)
      finite = jnp.isfinite(loss_sum)
      for leaf in jax.tree.leaves(params):
        finite &= jnp.all(jnp.isfinite(leaf))
      new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
      if self.ema_decay is not None:
        new_state = new_state.replace(ema=ema_update(state.ema, params, new_state.step, self.ema_decay))
      return new_state, jax.tree.map(jnp.zeros_like, acc), loss_sum, finite
    return update

  def _compiled(self, name: str, fn: Callable, donate: tuple, shardings, *args):
    """The executable of `fn` for these argument shapes, compiled (and counted, timed) once."""
    signature = (name,) + tuple((np.shape(a), str(a.dtype)) for a in jax.tree.leaves(args))
    if signature not in self._executables:
      start = time.perf_counter()
      kwargs = {} if shardings is None else dict(in_shardings=shardings[0], out_shardings=shardings[1])
      jitted = jax.jit(fn, donate_argnums=donate, **kwargs)
      self._executables[signature] = jitted.lower(*args).compile()
      self.compile_seconds += time.perf_counter() - start
      self.compiles += 1
    return self._executables[signature]

  def _shardings(self, kind: str):
    if self.mesh is None:
      return None
    rep, data = sharding.replicated(self.mesh), sharding.batch_sharding(self.mesh)
    if kind == 'accumulate':
      return (rep, rep, data, data, data, rep, rep), rep
    return (rep, rep, rep, rep, rep), rep

  def precompile(self, state: TrainState, x: np.ndarray, y: np.ndarray, chunk_sizes, *,
                 private: bool = True) -> None:
    """Compiles the step executables for these physical chunk sizes ahead of time, running nothing."""
    key, tag = jax.random.key(0), 'dp' if private else 'plain'
    acc = self._zero_accumulator(state)
    for size in sorted(set(chunk_sizes)):
      xb, yb, mask = sharding.put_rows((x, y), np.full(size, sampler.SENTINEL), self.mesh)
      self._compiled(f'{tag}_accumulate', self._accumulate_fn(private), (0,),
                     self._shardings('accumulate'), acc, state.params, xb, yb, mask, key, np.int32(0))
    self._compiled(f'{tag}_update', self._update_fn(private), (0, 1), self._shardings('update'),
                   state, acc, key, np.float32(0), np.float32(1))

  def peak_memory_bytes(self) -> int:
    """The largest device footprint among the compiled executables, from XLA's memory analysis:
    arguments + outputs not aliased to them + temporaries (or XLA's own peak, when larger)."""
    def footprint(stats):
      own = (stats.argument_size_in_bytes + stats.output_size_in_bytes - stats.alias_size_in_bytes
             + stats.temp_size_in_bytes)
      return max(own, stats.peak_memory_in_bytes or 0)
    return max((footprint(e.memory_analysis()) for e in self._executables.values()), default=0)

  def _zero_accumulator(self, state: TrainState):
    zeros = jax.tree.map(lambda p: np.zeros(p.shape, p.dtype), state.params)
    return sharding.replicate((zeros, np.zeros((), np.float32)), self.mesh)

  # Host loop.

  def logical_step(self, state: TrainState, x: np.ndarray, y: np.ndarray,
                   batch: sampler.PaddedBatch, *, key: jax.Array, noise_multiplier: float,
                   expected_batch_size: float, private: bool = True):
    """One logical batch, dispatched asynchronously: returns (state, loss sum, finite flag) on device."""
    if private and noise_multiplier > 0 and math.isinf(self.clip_norm):
      raise ConfigError('a noise multiplier > 0 needs a finite train.clip_norm (the noise is σ·C)')
    if self._accumulator is None:
      self._accumulator = self._zero_accumulator(state)
    tag = 'dp' if private else 'plain'
    by_person = batch.chunks[0].ndim == 2   # [persons, R] row indices: a `persons.PersonSampler` batch
    acc = self._accumulator
    self._accumulator = None
    for chunk_index, indices in enumerate(batch.chunks):
      xb, yb, mask = sharding.put_rows((x, y), indices, self.mesh)
      args = (acc, state.params, xb, yb, mask, key, np.int32(chunk_index))
      step = self._compiled(f'{tag}_{"person_" if by_person else ""}accumulate',
                            self._accumulate_fn(private, by_person), (0,),
                            self._shardings('accumulate'), *args)
      acc = step(*args)
    noise_std = noise_multiplier * self.clip_norm if noise_multiplier > 0 else 0.0
    args = (state, acc, key, np.float32(noise_std), np.float32(expected_batch_size))
    update = self._compiled(f'{tag}_update', self._update_fn(private), (0, 1),
                            self._shardings('update'), *args)
    state, self._accumulator, loss_sum, finite = update(*args)
    return state, loss_sum, finite

  def train_phase(self, state: TrainState, x: np.ndarray, y: np.ndarray, *,
                  sample_rates: np.ndarray, steps: int, noise_multiplier: float,
                  expected_batch_size: float, rng: np.random.Generator, key: jax.Array,
                  private: bool = True, progress: bool = True, phase: int | None = None,
                  person_of: np.ndarray | None = None):
    """Runs `steps` logical Poisson batches; returns (state, stats).

    Non-private (`private=False`): same sampling, no clipping, no noise, sum / E[B].
    Person-level (`person_of`: the person of each row, `persons.py`): persons are sampled at their rows'
    common rate and each person's summed gradient is clipped; `expected_batch_size` then counts persons
    (Σ_p q_p), and a chunk holds about `physical_batch_size` records.
    Raises FloatingPointError naming the phase and step at the first non-finite loss or parameter.
    """
    if not len(x) == len(y) == len(sample_rates):
      raise ConfigError(f'train_phase needs one sample rate per row: x has {len(x)} rows, y '
                        f'{len(y)}, sample_rates {len(sample_rates)}')
    if not expected_batch_size > 0:
      raise ConfigError(f'train.batch_size (expected, {expected_batch_size}) must be positive')
    if private and not noise_multiplier >= 0:
      raise ConfigError(f'noise_multiplier ({noise_multiplier}) must be non-negative')
    if person_of is None:
      multiple = self.pad_multiple or sampler.choose_pad_multiple(
          expected_batch_size, self.physical_batch_size, self.num_devices)
      draw = sampler.PoissonSampler(sample_rates, physical_batch_size=self.physical_batch_size,
                                    pad_multiple=multiple, rng=rng)
    else:
      layout = persons.PersonLayout(person_of)
      physical = layout.physical_persons(self.physical_batch_size, self.num_devices)
      multiple = sampler.choose_pad_multiple(expected_batch_size, physical, self.num_devices)
      if self.pad_multiple and physical % self.pad_multiple == 0:
        multiple = self.pad_multiple
      draw = persons.PersonSampler(layout, layout.person_rates(sample_rates), physical_batch_size=physical,
                                   pad_multiple=multiple, rng=rng)
    compiles_before, seconds_before = self.compiles, self.compile_seconds
    where = 'training' if phase is None else f'phase {phase}'
    real = padded = 0
    loss_total = 0.0
    pending = None

    def check(item):
      step, loss_sum, finite = item
      if not bool(finite):
        # The loss sum is computed from private data without noise: it is never shown.
        raise FloatingPointError(
            f'{where}, step {step + 1}/{steps}: non-finite loss or parameters; lower '
            'train.learning_rate or train.clip_norm, or check the data for NaN/inf')
      return float(loss_sum)

    # Steps done only: the rate and times of a step depend on the realised (private) batch sizes.
    for step in tqdm(range(steps), desc=f'{where} ({"DP" if private else "non-private"})',
                     disable=not progress, leave=False, bar_format='{desc}: {n_fmt}/{total_fmt}'):
      batch = draw.draw()
      state, loss_sum, finite = self.logical_step(
          state, x, y, batch, key=jax.random.fold_in(key, step), noise_multiplier=noise_multiplier,
          expected_batch_size=expected_batch_size, private=private)
      real += batch.size
      padded += batch.padded_size
      if pending is not None:
        loss_total += check(pending)
      pending = (step, loss_sum, finite)
    if pending is not None:
      loss_total += check(pending)
    stats = {
        'steps': steps,
        'mean_batch_size': real / steps if steps else 0.0,
        'padding_fraction': 1 - real / padded if padded else 0.0,
        'pad_multiple': multiple,
        'compiles': self.compiles - compiles_before,
        'compile_seconds': self.compile_seconds - seconds_before,
        'mean_loss': loss_total / real if real else math.nan,
    }
    return state, stats
