"""The run protocol every loop shares: one run per workdir, the checkpoint as the authority, and every
release counted exactly once.

  prepare (config, data, plan: nothing written) → lock the workdir → start, or resume from the latest
  checkpoint → for each remaining stage: compute → commit (checkpoint) → publish → finish.

Invariants (each tested with real processes):
- **One run at a time**: `workdir.Lock` is held for the run's life; a second run is refused.
- **One config**: the resolved config and the plan are stored in every checkpoint step and compared on
  resume; `config.json` and `plan.json` are copies, never the authority (missing copies are rewritten,
  damaged or disagreeing ones refused).
- **Commit before release**: a stage's result (metrics row, log line, `ledger.json`, later the summary,
  plots and the model export) is published only after the checkpoint that holds it is committed. A crash
  before the commit released nothing, so redoing the stage (with fresh noise when unseeded) gives one
  released result per stage; a crash after it re-publishes the same result on resume.
- **Never behind a release**: `ledger.json` (written before the stage's other outputs) always covers what
  was published. A workdir whose files show spend that no restorable checkpoint covers (checkpoints lost,
  rolled back or deleted) is refused, never restarted.
- **Stopping early is a stage**: a loop that refuses a step (a persistent budget would be exceeded) returns
  a state with `stopped` set; it is committed like any stage, and no later stage runs, now or on resume.
- **Only DP outputs in what is published**: loops put no loss, batch size, compile count or per-stage time
  in rows or log lines (the realised Poisson batches are private).

On several processes (`dpal_jax.distributed`) every process runs the same protocol on a shared workdir:
all of them save and restore each checkpoint together (orbax), only the coordinator holds the lock and
writes the workdir's files, and an unseeded run's streams come from the coordinator's OS entropy,
broadcast (`distributed.shared_seed`) and never written.
"""

import abc
import contextlib
import dataclasses
import json
import os
import time

import flax.serialization
import ml_collections
from absl import logging

from dpal_jax import checkpointing
from dpal_jax import distributed
from dpal_jax import plots
from dpal_jax import workdir as workdir_lib
from dpal_jax.errors import CheckpointError
from dpal_jax.errors import ConfigError
from dpal_jax.loops.state import RunState
from dpal_jax.privacy.ledger import Ledger
from dpal_jax.rng import RunRandomness

SPEND_FILES = ('ledger.json', 'metrics.jsonl', 'summary.json')
MODEL_EXPORT = os.path.join('model', 'params.msgpack')


@dataclasses.dataclass(frozen=True)
class Release:
  """What a stage publishes once committed: a log line and, for a trained phase, a metrics row."""
  log: str
  row: dict | None = None


class Loop(abc.ABC):
  """One algorithm. `__init__(config)` prepares everything that can fail (data, plan, model) and writes
  nothing; the protocol then calls `start` or `template`, `run_stage` for each stage, and `summary`."""

  plan = None          # the Plan (written as plan.json) when the loop plans its privacy
  num_stages: int      # stages 1 .. num_stages

  @abc.abstractmethod
  def start(self, randomness: RunRandomness) -> RunState:
    """The state before stage 1 of a fresh run."""

  @abc.abstractmethod
  def template(self) -> object:
    """A train state of the right shapes for restoring a checkpoint (its values are not used)."""

  @abc.abstractmethod
  def run_stage(self, state: RunState, stage: int) -> tuple[RunState, Release]:
    """Computes stage `stage` (pays for it in `state.ledger`); writes nothing."""

  def check_restored(self, state: RunState) -> None:
    """Raises CheckpointError when a restored state does not fit the loop at its stage."""

  def reserve(self, workdir: str) -> None:
    """Under the workdir lock, before anything is spent: claims what the run may spend beyond its workdir
    (a pool's persistent ledger); may make `plan` again from what it finds there."""

  def committed(self, state: RunState) -> None:
    """After the checkpoint of `state.stage` is committed, before it is published."""

  def finished(self, state: RunState) -> None:
    """After the last stage (or the stop) is published, before summary.json."""

  @abc.abstractmethod
  def summary(self, state: RunState) -> dict:
    """summary.json of a finished run."""

  def write_outputs(self, state: RunState, workdir: str, summary: dict) -> None:
    """The finished run's files besides summary.json and the model (published after the last commit)."""
    plots.write_all(os.path.join(workdir, 'plots'), list(state.history), metric_name=summary['metric'],
                    target_epsilon=summary['target_epsilon'])


def config_json(config: ml_collections.ConfigDict) -> dict:
  return json.loads(config.to_json_best_effort())


def execute(loop: Loop, config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Runs (or resumes) `loop` in `workdir` under the protocol above; returns the summary dict."""
  workdir_lib.check_usable(workdir)
  with workdir_lib.Lock(workdir) if distributed.is_coordinator() else contextlib.nullcontext():
    checkpointer = checkpointing.Checkpointer(workdir)
    try:
      loop.reserve(workdir)
      plan = None if loop.plan is None else loop.plan.to_json()
      resumed = _resume(loop, config, workdir, checkpointer, plan)
      state, plan = resumed if resumed is not None else (_start(loop, config, workdir, plan), plan)
      for stage in range(state.stage + 1, loop.num_stages + 1):
        if state.stopped:
          break
        started = time.time()
        state, release = loop.run_stage(state, stage)
        state = state.replace(stage=stage, wall=state.wall + time.time() - started)
        checkpointer.save(stage, state.train, state.to_meta() | {
            'config': config_json(config), 'plan': plan, 'release': release.log})
        loop.committed(state)
        _publish(workdir, state, release)
      return _finish(loop, workdir, state)
    finally:
      checkpointer.close()


def _start(loop: Loop, config, workdir: str, plan: str | None) -> RunState:
  recorded = [name for name in SPEND_FILES if os.path.exists(os.path.join(workdir, name))]
  if recorded:
    raise CheckpointError(
        f'--workdir {workdir} has recorded spend ({", ".join(recorded)}) but no checkpoint to resume '
        'from; starting again would release a second, uncounted result. Keep this workdir as it is and '
        'start the new run with a new --workdir')
  randomness = _randomness(config.seed)
  state = loop.start(randomness)
  if distributed.is_coordinator():
    workdir_lib.write_text(os.path.join(workdir, 'config.json'),
                           workdir_lib.json_text(config_json(config)))
    if plan is not None:
      workdir_lib.write_text(os.path.join(workdir, 'plan.json'), plan)
  logging.info('Started %s; noise is %s.', workdir,
               'reproducible (config.seed is set: anyone who knows it can rebuild the noise)'
               if randomness.reproducible else 'seeded from OS entropy and never written')
  return state


def _resume(loop: Loop, config, workdir: str, checkpointer,
            plan: str | None) -> tuple[RunState, str | None] | None:
  """The restored state and the plan text the run committed first (which stays the authority: a plan
  made again differs in its `seconds`), or None when there is no checkpoint."""
  if checkpointer.latest_stage() is None:
    return None
  restored = checkpointer.restore(loop.template())
  meta = restored.meta
  current = config_json(config)
  if meta.get('config') != current:
    changed = _diff_keys(meta.get('config'), current)
    raise ConfigError(
        f'--workdir {workdir} holds a run with a different config (fields: {", ".join(changed)}); '
        'use the same config to resume, or a new --workdir')
  fresh = _randomness(None) if meta.get('randomness') is None else None
  state = RunState.from_meta(restored.stage, restored.state, meta, fresh)
  if not 1 <= state.stage <= loop.num_stages:
    raise CheckpointError(f'checkpoint {state.stage} is outside this run\'s stages 1..{loop.num_stages}; '
                          'nothing was changed. Start a new run with a new --workdir')
  loop.check_restored(state)
  saved_plan = meta.get('plan')
  if _timeless_plan(saved_plan) != _timeless_plan(plan):
    raise CheckpointError(f'checkpoint {state.stage} was written under another privacy plan; nothing was '
                          'changed. Start a new run with a new --workdir')
  _check_copy(workdir, 'config.json', workdir_lib.json_text(current), json.loads)
  if saved_plan is not None:
    _check_copy(workdir, 'plan.json', saved_plan, json.loads)
  _check_not_behind(workdir, state)
  logging.info('Resumed %s at stage %d of %d.', workdir, state.stage, loop.num_stages)
  if state.stage < loop.num_stages:  # the committed stage again (it may not have been published)
    _publish(workdir, state, Release(f'{meta.get("release", "")} (committed before the restart)'))
  return state, saved_plan


def _timeless_plan(text: str | None) -> dict | None:
  """A plan's JSON without the time it took to make (the one field that differs between runs)."""
  return None if text is None else {k: v for k, v in json.loads(text).items() if k != 'seconds'}


def _check_copy(workdir: str, name: str, authority: str, parse) -> None:
  """A copy of what the checkpoint holds: rewritten when missing, refused when it disagrees."""
  path = os.path.join(workdir, name)
  saved = workdir_lib.read_state_file(path, parse)
  if saved is None:
    if distributed.is_coordinator():
      workdir_lib.write_text(path, authority)
  elif saved != parse(authority):
    raise CheckpointError(f'{path} disagrees with the checkpoint, which is the authority; nothing was '
                          f'changed. Delete {name} to have it rewritten from the checkpoint, or use a '
                          'new --workdir')


def _check_not_behind(workdir: str, state: RunState) -> None:
  """Refuses a checkpoint that is behind what the workdir's files show as released."""
  ledger = workdir_lib.read_state_file(os.path.join(workdir, 'ledger.json'), Ledger.from_json)
  if ledger is not None and not _is_prefix(ledger.to_dict(), state.ledger.to_dict()):
    raise CheckpointError(
        f'{workdir}/ledger.json records spend that the latest checkpoint ({state.stage}) does not cover: '
        'a checkpoint was lost or removed, and resuming would release a second, uncounted result. '
        'Nothing was changed; start a new run with a new --workdir')
  rows = workdir_lib.read_state_file(os.path.join(workdir, 'metrics.jsonl'),
                                     lambda t: [json.loads(line) for line in t.splitlines() if line])
  if rows is not None and rows != list(state.history)[:len(rows)]:
    raise CheckpointError(
        f'{workdir}/metrics.jsonl shows results that the latest checkpoint ({state.stage}) does not hold; '
        'nothing was changed. Start a new run with a new --workdir')


def _is_prefix(a, b) -> bool:
  """True when `a` equals `b` except that each list in `a` may be a prefix of the list in `b`."""
  if isinstance(a, dict) and isinstance(b, dict):
    return a.keys() == b.keys() and all(_is_prefix(a[k], b[k]) for k in a)
  if isinstance(a, list) and isinstance(b, list):
    return len(a) <= len(b) and a == b[:len(a)]
  return a == b


def _publish(workdir: str, state: RunState, release: Release | None) -> None:
  """Publishes a committed state: ledger.json first (it must cover every release), then the rest."""
  if not distributed.is_coordinator():
    return
  workdir_lib.write_text(os.path.join(workdir, 'ledger.json'), state.ledger.to_json())
  if state.history:
    workdir_lib.write_jsonl(os.path.join(workdir, 'metrics.jsonl'), list(state.history))
  if release is not None:
    logging.info('%s', release.log)


def _finish(loop: Loop, workdir: str, state: RunState) -> dict:
  """Publishes the finished run: ledger, metrics, summary.json, plots and the model export."""
  _publish(workdir, state, None)
  loop.finished(state)
  summary = loop.summary(state)
  if distributed.is_coordinator():
    workdir_lib.write_json(os.path.join(workdir, 'summary.json'), summary)
    loop.write_outputs(state, workdir, summary)
    params = state.train.params if hasattr(state.train, 'params') else state.train
    workdir_lib.write_bytes(os.path.join(workdir, MODEL_EXPORT),
                            flax.serialization.to_bytes(distributed.host_copy(params)))
  return summary


def _randomness(seed: int | None) -> RunRandomness:
  """The run's streams: from `seed`, else from OS entropy that every process shares (never written)."""
  return RunRandomness.create(distributed.shared_seed(seed), reproducible=seed is not None)


def _diff_keys(a, b, prefix=''):
  if not (isinstance(a, dict) and isinstance(b, dict)):
    return [prefix.rstrip('.') or '(all)'] if a != b else []
  out = []
  for key in sorted(set(a) | set(b)):
    out += _diff_keys(a.get(key), b.get(key), f'{prefix}{key}.')
  return out
