"""Private releases beside the dp-accounting events that pay for them (NumPy + dp-accounting, no JAX).

A mechanism is a small frozen dataclass holding its noise parameters, one module each, found by its
config name (`privacy.query_mechanism`) in MECHANISMS. The same object draws the noise (`top_k`, `release`)
and states its cost (`dp_event`: what one release costs each affected unit), so the noise drawn and the
noise accounted cannot drift apart: the plan and the ledger store the object's `params()`, selection
runs the object rebuilt from them. Each also says how a budget ε over T rounds is split (`for_budget`).
Adding a mechanism is one module plus one line here.

- 'laplace' (`laplace_top_k.LaplaceTopK`): clamped-score Laplace top-k, pure ε per candidate per round.
- 'gaussian' (`gaussian_top_k.GaussianTopK`): clamped-score Gaussian top-k, optionally over
  Poisson-sampled candidates.
- 'subsampled_gaussian' (`subsampled_top_k.SubsampledGaussianTopK`): the Gaussian top-k over candidates
  each scored with a public probability p, (p, σ) chosen to maximise a model of selection fidelity.
`top_k` holds what they share (clamping, the exact top-k).
"""

from typing import Protocol

import dp_accounting
import numpy as np

from dpal_jax import registry

MECHANISMS = {
    'laplace': 'dpal_jax.privacy.mechanisms.laplace_top_k:LaplaceTopK',
    'gaussian': 'dpal_jax.privacy.mechanisms.gaussian_top_k:GaussianTopK',
    'subsampled_gaussian': 'dpal_jax.privacy.mechanisms.subsampled_top_k:SubsampledGaussianTopK',
}


class TopKMechanism(Protocol):
  """What a selection mechanism offers (see the module docstring)."""
  name: str

  def params(self) -> dict: ...
  def dp_event(self) -> dp_accounting.DpEvent: ...
  def top_k(self, scores: np.ndarray, k: int, *, clamp: float,
            rng: np.random.Generator) -> np.ndarray: ...


def get(name: str) -> type:
  """The mechanism class registered as `name`; ConfigError naming privacy.query_mechanism if unknown."""
  return registry.resolve(MECHANISMS, name, 'privacy.query_mechanism')


def to_dict(mechanism: TopKMechanism) -> dict:
  """{'mechanism': name, **params}: the mechanism as plain data."""
  return {'mechanism': mechanism.name, **mechanism.params()}


def from_dict(data: dict) -> TopKMechanism:
  """The mechanism `to_dict` wrote."""
  params = {k: v for k, v in data.items() if k != 'mechanism'}
  return get(data['mechanism'])(**params)
