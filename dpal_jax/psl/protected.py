"""The protected setting: which pool examples never leave their client, enforced by the data pipeline.

`split(dataset, protected_fraction=, num_clients=, seed=)` draws (from `seed` alone, independent of every
record, so it costs no privacy) a fraction of the pool as protected and deals every example to one of the
clients. It returns
- `labeling`: a `Dataset` whose pool holds the unprotected examples only. Everything that labels, trains
  the teacher (the task learner) or selects reads this dataset, so a protected example is not there to
  be labeled, batched or picked: the pool's indices address unprotected examples and nothing else;
- one `Client` per client: the indices of its unprotected examples (into `labeling`) and its protected
  inputs as `ProtectedInputs`, which carry no labels and refuse to become an array (`np.asarray` raises
  TypeError), so they cannot be handed to `Pool`, the Trainer or a query by mistake. Only a client's own
  peer study reads them, through `ProtectedInputs.for_client_study()`.
`public_ids` maps `labeling`'s pool back to the original pool (for tests and reports; never to data).
"""

import dataclasses

import numpy as np

from dpal_jax.data.dataset import Dataset
from dpal_jax.errors import ConfigError


class ProtectedInputs:
  """The inputs of one client's protected examples: no labels, never an array outside the client."""

  def __init__(self, x: np.ndarray, client: int):
    self._x = x
    self.client = client

  def __len__(self) -> int:
    return len(self._x)

  def __array__(self, *args, **kwargs):
    raise TypeError(f'client {self.client}\'s protected examples never leave the client: they cannot be '
                    'labeled, sent to the task learner or selected (only its peer study reads them)')

  def for_client_study(self) -> np.ndarray:
    """The inputs, for this client's own peer study (out-of-class, or distillation under privacy)."""
    return self._x


@dataclasses.dataclass(frozen=True)
class Client:
  """One client: `public` indices into the labeling pool (its unprotected examples), its protected
  inputs."""
  index: int
  public: np.ndarray
  protected: ProtectedInputs


@dataclasses.dataclass(frozen=True)
class Split:
  labeling: Dataset
  clients: tuple
  public_ids: np.ndarray     # labeling pool row i is original pool row public_ids[i]
  protected_ids: np.ndarray  # the original pool rows that are protected


def split(dataset: Dataset, *, protected_fraction: float, num_clients: int, seed: int) -> Split:
  """The protected split of `dataset`'s pool (see the module docstring); ConfigError when it leaves a
  client without unprotected examples."""
  n = len(dataset.x_train)
  rng = np.random.default_rng(seed)
  order = rng.permutation(n)
  num_protected = int(round(protected_fraction * n))
  protected_ids = np.sort(order[:num_protected])
  public_ids = np.sort(order[num_protected:])
  if len(public_ids) < num_clients:
    raise ConfigError(f'psl.protected_fraction ({protected_fraction}) leaves {len(public_ids)} of {n} '
                      f'pool examples unprotected, fewer than psl.clients ({num_clients}); lower '
                      'psl.protected_fraction or psl.clients')
  owner_public = rng.permutation(len(public_ids)) % num_clients
  owner_protected = rng.permutation(len(protected_ids)) % num_clients
  labeling = dataclasses.replace(
      dataset, x_train=dataset.x_train[public_ids], y_train=dataset.y_train[public_ids],
      noisy=None if dataset.noisy is None else dataset.noisy[public_ids])
  clients = tuple(
      Client(index=c, public=np.flatnonzero(owner_public == c),
             protected=ProtectedInputs(dataset.x_train[protected_ids[owner_protected == c]], c))
      for c in range(num_clients))
  return Split(labeling=labeling, clients=clients, public_ids=public_ids, protected_ids=protected_ids)
