"""One orbax checkpoint step per stage of the loop: parameters and the privacy ledger are saved together.

Stages count the loop's releases: stage 2k+1 = phase k trained, stage 2k+2 = query k+1 done. Saving the
ledger, the pool and the RNG states in the same step as the parameters they go with means a resumed run
never forgets a spend (a crash inside a phase releases nothing: its parameters and metrics were not
written, so redoing the phase spends only what the ledger then records).
"""

import dataclasses
import os
from typing import Any

import jax
import orbax.checkpoint as ocp

from dpal_jax.errors import CheckpointError


@dataclasses.dataclass(frozen=True)
class Restored:
  stage: int
  state: Any
  meta: dict


class Checkpointer:
  """Saves and restores (train state, JSON metadata) pairs under `workdir/checkpoints`."""

  def __init__(self, workdir: str, max_to_keep: int = 2):
    self.directory = os.path.join(os.path.abspath(workdir), 'checkpoints')
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True, enable_async_checkpointing=False))

  def latest_stage(self) -> int | None:
    return self._manager.latest_step()

  def save(self, stage: int, state: Any, meta: dict) -> None:
    self._manager.save(
        stage,
        args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
        force=True)
    self._manager.wait_until_finished()

  def restore(self, fresh_state: Any) -> Restored | None:
    """The latest checkpoint, shaped like `fresh_state`; None when there is none.

    Raises CheckpointError naming the folder when the files are unreadable or do not fit the model.
    """
    stage = self._manager.latest_step()
    if stage is None:
      return None
    abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, fresh_state)
    try:
      restored = self._manager.restore(
          stage,
          args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
    except Exception as e:  # orbax raises many types for damaged files; all mean the same to a user
      raise CheckpointError(
          f'checkpoint {os.path.join(self.directory, str(stage))} cannot be restored '
          f'({type(e).__name__}: {str(e)[:300]}); delete that folder to resume from the one before, '
          'or use a new --workdir') from e
    if restored.meta is None or restored.state is None:
      raise CheckpointError(
          f'checkpoint {os.path.join(self.directory, str(stage))} is incomplete; delete it or use a '
          'new --workdir')
    return Restored(stage=stage, state=restored.state, meta=dict(restored.meta))

  def close(self) -> None:
    self._manager.close()
