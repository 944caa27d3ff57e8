"""PATE's teachers as one stacked model: n copies of a Flax classifier trained at once, each on its own
partition, and their votes on the student's public queries.

Teacher t starts from `model.init(fold_in(init_key, t))` and takes `steps` optimizer steps on minibatches
of `batch_size` records drawn uniformly with replacement from its partition, the minibatch positions of
step s drawn from `fold_in(train_key, t)` split `steps` ways. One teacher's whole run is a pure function
(`train_one`: a `lax.scan` over its steps); the stack is that function under `jax.vmap` over the stacked
parameters, keys and partition indices (the sensitive inputs are shared, not copied), and under
`lax.map(..., batch_size=chunk)` when only `chunk` teachers fit in memory at once. So the stacked teachers
are, to float32 rounding, n separately trained teachers (tested).

Teachers train non-privately: their parameters, their losses and their accuracies are functions of the
sensitive records without noise and are never released. Only the noisy aggregate of their votes
(`pate.aggregators`) leaves the loop. The vote histogram of a query is the number of teachers predicting
each class: changing one partition changes one teacher, so one count goes down by one and another up by
one (L1 sensitivity 2, L2 sensitivity √2).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from dpal_jax.dpsgd import losses
from dpal_jax.models import inference
from dpal_jax.pate.partition import Partitions


def init_one(model, key: jax.Array, sample_x: jnp.ndarray):
  """One teacher's initial parameters."""
  return model.init(key, sample_x)['params']


def train_one(model, optimizer: optax.GradientTransformation, steps: int, batch_size: int, params,
              key: jax.Array, x: jnp.ndarray, y: jnp.ndarray, index: jnp.ndarray, size: jnp.ndarray):
  """One teacher trained on its partition: `steps` minibatches of `batch_size` of x[index[:size]].

  Args:
    model, optimizer: the Flax classifier and the optax optimizer.
    steps, batch_size: the run's length and minibatch size.
    params: the teacher's initial parameters.
    key: the teacher's own key of minibatch positions.
    x, y: every sensitive record (shared by all teachers).
    index, size: the partition's record indices (padded) and its size.

  Returns the trained parameters.
  """
  loss_fn = losses.per_example_loss('multiclass')

  def mean_loss(p, xb, yb):
    return jnp.mean(loss_fn(model.apply({'params': p}, xb), yb))

  def step(carry, step_key):
    p, opt_state = carry
    rows = index[jax.random.randint(step_key, (batch_size,), 0, size)]
    grads = jax.grad(mean_loss)(p, x[rows], y[rows])
    updates, opt_state = optimizer.update(grads, opt_state, p)
    return (optax.apply_updates(p, updates), opt_state), None

  (params, _), _ = jax.lax.scan(step, (params, optimizer.init(params)), jax.random.split(key, steps))
  return params


class StackedTeachers:
  """n teachers of `model` trained together (see the module docstring).

  chunk: the most teachers vmapped at once (`lax.map` over chunks); None: all of them.
  """

  def __init__(self, model, optimizer: optax.GradientTransformation, *, steps: int, batch_size: int,
               chunk: int | None = None):
    self.model = model
    self.optimizer = optimizer
    self.steps = steps
    self.batch_size = batch_size
    self.chunk = chunk

  def _map(self, fn, xs):
    """fn over the leading (teacher) axis of the pytree `xs`: vmapped, in chunks when asked."""
    return jax.lax.map(lambda args: fn(*args), xs, batch_size=self.chunk or None) if self.chunk \
        else jax.vmap(fn)(*xs)

  def train(self, init_key: jax.Array, train_key: jax.Array, x: np.ndarray, y: np.ndarray,
            partitions: Partitions):
    """The stacked parameters (every leaf with a leading teacher axis) of all n trained teachers."""
    n = partitions.num_teachers
    index, _ = partitions.members()
    sizes = jnp.asarray(partitions.sizes, jnp.int32)
    init_keys = jax.vmap(functools.partial(jax.random.fold_in, init_key))(jnp.arange(n))
    train_keys = jax.vmap(functools.partial(jax.random.fold_in, train_key))(jnp.arange(n))
    return self._train(init_keys, train_keys, jnp.asarray(x), jnp.asarray(y), jnp.asarray(index), sizes)

  @functools.partial(jax.jit, static_argnums=0)
  def _train(self, init_keys, train_keys, x, y, index, sizes):
    sample = x[:1]

    def one(init_key, train_key, idx, size):
      params = init_one(self.model, init_key, sample)
      return train_one(self.model, self.optimizer, self.steps, self.batch_size, params, train_key, x, y,
                       idx, size)
    return self._map(one, (init_keys, train_keys, index, sizes))

  def predictions(self, params, x: np.ndarray, *, batch_size: int) -> np.ndarray:
    """int32 [n, len(x)]: every teacher's predicted class of every row of `x`."""
    forward = _stacked_predictions(self.model, self.chunk)
    out = inference.map_batches(lambda p, xb, _: forward(p, xb).T, params, x, batch_size=batch_size)
    return np.asarray(out).T

  def votes(self, params, x: np.ndarray, *, num_classes: int, batch_size: int) -> np.ndarray:
    """int32 [len(x), num_classes]: the vote histogram of each row (how many teachers predict each
    class). Private: a function of the sensitive records without noise."""
    predicted = self.predictions(params, x, batch_size=batch_size)
    return histogram(predicted, num_classes)

  def accuracies(self, params, x: np.ndarray, y: np.ndarray, *, batch_size: int) -> np.ndarray:
    """float64 [n]: each teacher's accuracy on (x, y). Private (teachers trained without noise): a
    diagnostic for the data owner, never a released figure."""
    return np.mean(self.predictions(params, x, batch_size=batch_size) == np.asarray(y)[None], axis=1)


def histogram(predicted: np.ndarray, num_classes: int) -> np.ndarray:
  """int32 [queries, num_classes] vote counts from predictions [teachers, queries]."""
  predicted = np.asarray(predicted)
  counts = np.zeros((predicted.shape[1], num_classes), np.int32)
  for t in range(predicted.shape[0]):
    counts[np.arange(predicted.shape[1]), predicted[t]] += 1
  return counts


@functools.lru_cache(maxsize=8)
def _stacked_predictions(model, chunk: int | None):
  def one(p, xb):
    return jnp.argmax(model.apply({'params': p}, xb), axis=-1).astype(jnp.int32)

  @jax.jit
  def forward(params, xb):
    if chunk:
      return jax.lax.map(lambda p: one(p, xb), params, batch_size=chunk)
    return jax.vmap(one, in_axes=(0, None))(params, xb)
  return forward
