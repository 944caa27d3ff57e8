"""The training state: a pytree (step, params, opt_state) that orbax `StandardSave` writes as is.

`EMATrainState` adds an exponential moving average of the parameters (`ema`, updated by the Trainer after
every step: `ema_update`) and `snapshot`, named parameter sets a loop keeps for its next query (LHD's
online and EMA parameters at its snapshot epoch), so that both are in the checkpoint and a resume is exact.
An EMA of DP-SGD iterates is post-processing of them: it costs no privacy.
"""

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  opt_state: Any

  @classmethod
  def create(cls, params, optimizer: optax.GradientTransformation) -> 'TrainState':
    return cls(step=jnp.zeros((), jnp.int32), params=params, opt_state=optimizer.init(params))


@flax.struct.dataclass
class EMATrainState(TrainState):
  ema: Any
  snapshot: Any

  @classmethod
  def create(cls, params, optimizer: optax.GradientTransformation, ema=None,
             step=None) -> 'EMATrainState':
    """Fresh optimizer state; `ema` defaults to a copy of `params`, `step` (the EMA's counter) to 0."""
    copy = lambda tree: jax.tree.map(jnp.array, tree)   # own buffers: the step donates the state
    ema = copy(params if ema is None else ema)
    step = jnp.zeros((), jnp.int32) if step is None else jnp.asarray(step, jnp.int32)
    return cls(step=step, params=params, opt_state=optimizer.init(params), ema=ema,
               snapshot={'online': copy(params), 'ema': copy(ema)})


def ema_update(ema, params, step: jax.Array, max_decay: float):
  """EMA after update number `step` (1, 2, …): d·ema + (1 − d)·params, d = min(1 − 1/(step + 1), max_decay).

  The mean-teacher schedule: the first update gives d = ½, and d approaches `max_decay` (0.999 for LHD).
  """
  decay = jnp.minimum(1.0 - 1.0 / (step.astype(jnp.float32) + 1.0), max_decay)
  return jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema, params)
