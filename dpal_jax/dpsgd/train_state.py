"""The training state: a pytree (step, params, opt_state) that orbax `StandardSave` writes as is."""

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
