"""P peer students trained at once: one Flax model, its parameters stacked on a leading axis of size P.

  params = init(member, keys [P], sample_x)            # jax.vmap of member.init over P keys
  logits = StackedPeers(member).apply({'params': params}, x)   # [N, P, K]: candidates first
  params, opt_state = study_step(member, optimizer, params, opt_state, batch, out_weight=λ)

One step minimises Σ_p L_in(p) + λ·L_out(all peers) (`psl.losses`): the in-class terms are separate per
peer and every optax optimizer here acts element-wise, so with λ = 0 the stacked peers follow exactly the
trainings of P separate peers from the same keys (tested); λ > 0 couples them through the discrepancy.
`fedavg` averages the peers of several clients, weighted by how many examples each client holds.
"""

import dataclasses
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from dpal_jax.psl import losses


@dataclasses.dataclass(frozen=True)
class StackedPeers:
  """The P peers as one model for `al.strategies.select_scored` and `models.inference.predict`:
  `apply({'params': stacked}, x)` gives the logits [N, P, K] of every peer on every row; with `ensemble`,
  the log of the peers' mean probabilities [N, K] (the ensemble's prediction, for evaluation)."""
  member: nn.Module
  ensemble: bool = False

  def apply(self, variables, x, train: bool = False, method=None, rngs=None):
    del train, rngs  # peers have no stochastic layers
    if method is not None:
      raise ValueError(f'StackedPeers has no method {method!r}')
    logits = jnp.moveaxis(peer_logits(self.member, variables['params'], x), 0, 1)
    if self.ensemble:
      return jnp.log(jnp.mean(jax.nn.softmax(logits), axis=1))
    return logits


def init(member: nn.Module, keys: jax.Array, sample_x) -> dict:
  """Stacked parameters of len(keys) peers, peer p initialised from keys[p]."""
  x = jnp.asarray(sample_x[:1])
  return jax.vmap(lambda key: member.init(key, x)['params'])(keys)


def peer_logits(member: nn.Module, params, x: jax.Array) -> jax.Array:
  """Logits [P, N, K] of the stacked peers on a batch (the training layout: peers first)."""
  return jax.vmap(lambda p: member.apply({'params': p}, x))(params)


def study_loss(member: nn.Module, params, batch: dict, *, out_weight: float, alpha: float, tau: float,
               xi: float) -> jax.Array:
  """Σ_p L_in(p) on batch['x_in'], ['y_in'], ['teacher_in'] + out_weight · L_out on batch['x_out']."""
  logits_in = peer_logits(member, params, batch['x_in'])
  in_class = jax.vmap(lambda z: losses.in_class(z, batch['teacher_in'], batch['y_in'], alpha=alpha,
                                                tau=tau))(logits_in)
  total = jnp.sum(in_class)
  if out_weight:
    total = total + out_weight * losses.out_of_class(peer_logits(member, params, batch['x_out']), xi=xi)
  return total


@functools.partial(jax.jit, static_argnames=('member', 'optimizer', 'out_weight', 'alpha', 'tau', 'xi'))
def study_step(member: nn.Module, optimizer: optax.GradientTransformation, params, opt_state,
               batch: dict, *, out_weight: float, alpha: float = losses.ALPHA, tau: float = losses.TAU,
               xi: float = losses.XI):
  """One optimizer step of every peer on `batch` (see `study_loss`); returns (params, opt_state)."""
  grads = jax.grad(lambda p: study_loss(member, p, batch, out_weight=out_weight, alpha=alpha, tau=tau,
                                        xi=xi))(params)
  updates, opt_state = optimizer.update(grads, opt_state, params)
  return optax.apply_updates(params, updates), opt_state


def fedavg(client_params: list, weights) -> dict:
  """The weighted mean Σ_c w_c θ_c / Σ_c w_c of the clients' (stacked) peer parameters."""
  w = np.asarray(weights, np.float64)
  if len(client_params) != len(w) or not (w > 0).all():
    raise ValueError(f'fedavg needs one positive weight per client, got {list(w)} for '
                     f'{len(client_params)} clients')
  w = w / w.sum()
  return jax.tree.map(lambda *leaves: sum(float(wc) * leaf for wc, leaf in zip(w, leaves)), *client_params)
