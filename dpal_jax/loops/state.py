"""`RunState`: everything a loop carries from one stage to the next, and its checkpoint metadata.

A stage is one release of a loop (a trained phase, a query, …), numbered 1, 2, … ; `stage` is the last one
committed (0 before the first). The train state is saved by orbax as arrays; everything else goes into the
same checkpoint step as JSON (`to_meta` / `from_meta`), so the ledger can never be saved apart from the
parameters and the pool it paid for. An unseeded run's RNG states are never written (see `dpal_jax.rng`).
"""

import dataclasses
from typing import Any

from dpal_jax.data.pool import Pool
from dpal_jax.errors import CheckpointError
from dpal_jax.privacy.ledger import Ledger
from dpal_jax.rng import RunRandomness


@dataclasses.dataclass(frozen=True)
class RunState:
  """stage: last committed stage; train: the train state (params, optimizer state); pool: the labeled
  pool (None for loops without one); ledger: the privacy spent so far; randomness: the run's streams;
  history: one released metrics row per trained phase; wall: seconds spent in stages so far; stopped:
  None, or why the loop ended before its last stage ({'stage', 'at', 'unit', 'reason'}, public values only:
  the refused step and the ε it would have reached); a stopped state runs no further stage."""
  stage: int
  train: Any
  pool: Pool | None
  ledger: Ledger
  randomness: RunRandomness
  history: tuple = ()
  wall: float = 0.0
  stopped: dict | None = None

  def replace(self, **changes) -> 'RunState':
    return dataclasses.replace(self, **changes)

  def to_meta(self) -> dict:
    """The JSON half of a checkpoint step (the train state is the array half)."""
    return {'stage': self.stage, 'pool': None if self.pool is None else self.pool.to_json(),
            'ledger': self.ledger.to_json(), 'randomness': self.randomness.to_json(),
            'history': list(self.history), 'wall': self.wall, 'stopped': self.stopped}

  @classmethod
  def from_meta(cls, stage: int, train: Any, meta: dict, fresh: RunRandomness) -> 'RunState':
    """The state saved by `to_meta` at checkpoint step `stage`, with `fresh` streams when none were
    saved (an unseeded run); CheckpointError if it is inconsistent."""
    try:
      if meta['stage'] != stage:
        raise ValueError(f'its metadata says stage {meta["stage"]}')
      pool = None if meta['pool'] is None else Pool.from_json(meta['pool'])
      saved = meta['randomness']
      return cls(stage=stage, train=train, pool=pool, ledger=Ledger.from_json(meta['ledger']),
                 randomness=fresh if saved is None else RunRandomness.from_json(saved),
                 history=tuple(meta['history']), wall=float(meta['wall']),
                 stopped=meta.get('stopped'))
    except (KeyError, TypeError, ValueError) as e:
      raise CheckpointError(f'checkpoint {stage} is inconsistent ({type(e).__name__}: {str(e)[:200]}); '
                            'nothing was changed. Start a new run with a new --workdir') from e
