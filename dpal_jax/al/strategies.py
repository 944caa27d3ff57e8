"""Query strategies by name (`al.strategy`) and `select`, the selection entry point of the loops.

A strategy reads named parameter sets of a committee (`{'online': params}` today: the model being
trained; later 'ema', peers, teachers) and declares which it needs (`Strategy.members`). It either scores
every unlabeled candidate (jitted over the pool in padded batches) and hands the scores to a top-k: the
exact one when `mechanism` is None, else the private release of `privacy.mechanisms` whose event the
ledger charges — or it selects a batch by itself (random, BADGE, core-set, LHD). Adding a strategy is
one entry in STRATEGIES. LHD (`al.lhd`) reads the committee's snapshot pair (online, EMA) that the loop
keeps when a strategy needs it (`needs_ema`).

Selection fidelity of picks S (|S| = k) from N candidates with scores s: |S ∩ top_2k(s)| / k, against
2k/N for a uniform draw. It reads the unnoised s, so it is a sensitive diagnostic (`selection_fidelity`).
"""

import dataclasses
import functools
import math
from collections.abc import Callable
from collections.abc import Mapping

import jax
import numpy as np

from dpal_jax import validate
from dpal_jax.al import diversity
from dpal_jax.al import lhd
from dpal_jax.al import peer_study
from dpal_jax.al import private_scores
from dpal_jax.al import uncertainty
from dpal_jax.errors import ConfigError
from dpal_jax.models import inference
from dpal_jax.privacy.mechanisms import TopKMechanism
from dpal_jax.privacy.mechanisms import top_k

TASKS = ('multiclass', 'multilabel')
ONLINE = 'online'   # the committee member being trained
EMA = 'ema'         # its exponential moving average (dpsgd.train_state.EMATrainState)
SNAPSHOT_ONLINE, SNAPSHOT_EMA = 'snapshot_online', 'snapshot_ema'   # both at LHD's snapshot epoch
PEERS = 'peers'     # stacked peer students (loop 'psl'), scored together


@dataclasses.dataclass(frozen=True)
class Strategy:
  """One query strategy.

  name: its `al.strategy` name.
  clamp: Δ, the score range [0, Δ] that private selection clamps to and calibrates its noise on; None when
    the strategy has no private mechanism (it either needs none, like random, or has none).
  private: whether its selection can run under a finite privacy.epsilon_al (random: it reads no data).
  score: probabilities [N, K] (BALD: [M, N, K]) → scores [N], larger = select (`al.uncertainty`).
  mc_dropout: the score takes M dropout passes (BALD).
  multilabel: the score is defined for multi-label predictions.
  pick: chooses k indices by itself, with the keyword arguments of `select` and `params` of its member
    (random, BADGE, core-set, LHD).
  scores: (model, params, x, batch_size) → scores [N] computed by itself from its members (lhd_score),
    instead of `score` on one member's probabilities.
  members: the committee's parameter sets it reads; `params` is the set of `members[0]`, or the tuple of
    all of them when it reads several (LHD: the snapshot pair).
  """
  name: str
  clamp: float | None
  private: bool
  score: Callable | None = None
  mc_dropout: bool = False
  multilabel: bool = True
  pick: Callable | None = None
  scores: Callable | None = None
  members: tuple = (ONLINE,)


def _random(*, x_unlabeled, k, rng, **_) -> np.ndarray:
  """Uniform without replacement: independent of every record, so it costs no privacy."""
  return rng.choice(len(x_unlabeled), size=k, replace=False)


STRATEGIES = {s.name: s for s in (
    Strategy('random', clamp=None, private=True, pick=_random, members=()),
    Strategy('entropy', clamp=0.8, private=True, score=uncertainty.entropy),
    Strategy('confidence', clamp=1.0, private=True, score=uncertainty.least_confidence),
    Strategy('margin', clamp=1.0, private=True, score=uncertainty.margin, multilabel=False),
    Strategy('bald', clamp=1.0, private=True, score=uncertainty.bald, mc_dropout=True),
    Strategy('badge', clamp=None, private=False, pick=diversity.badge),
    Strategy('coreset', clamp=None, private=False, pick=diversity.coreset),
    # The LHD paper's name for furthest-first from the labeled set, which is core-set's k-center greedy.
    Strategy('diversity', clamp=None, private=False, pick=diversity.coreset),
    Strategy('lhd', clamp=None, private=False, pick=lhd.select, multilabel=False,
             members=(SNAPSHOT_ONLINE, SNAPSHOT_EMA)),
    # clamp: al.lhd_score_bound, set by `from_config`.
    Strategy('lhd_score', clamp=1.0, private=True, scores=lhd.scores, multilabel=False,
             members=(SNAPSHOT_ONLINE, SNAPSHOT_EMA)),
    Strategy('peer_study', clamp=None, private=False, score=peer_study.summed_kl, multilabel=False,
             members=(PEERS,)),
    Strategy('peer_study_js', clamp=peer_study.JS_RANGE, private=True, score=peer_study.mean_js,
             multilabel=False, members=(PEERS,)),
    # Scores designed for private selection (al/private_scores.py, docs/selection.md): public thresholds.
    Strategy('uncertain', clamp=1.0, private=True, score=private_scores.uncertain),
    Strategy('no_majority', clamp=1.0, private=True, score=private_scores.no_majority, multilabel=False),
    Strategy('entropy_half', clamp=private_scores.ENTROPY_HALF_CLAMP, private=True,
             score=uncertainty.entropy),
)}


def get(name: str) -> Strategy:
  """The strategy registered as `name` (config field `al.strategy`)."""
  return STRATEGIES[validate.choice('al.strategy', name, STRATEGIES)]


def from_config(al_config) -> Strategy:
  """The strategy `al.strategy` with its options from the config (lhd_score: clamp = al.lhd_score_bound)."""
  strategy = get(al_config.strategy)
  if strategy.name == 'lhd_score':
    strategy = dataclasses.replace(strategy, clamp=float(al_config.get('lhd_score_bound', strategy.clamp)))
  return strategy


def needs_ema(strategy: Strategy) -> bool:
  """Whether the strategy reads the EMA or the snapshot pair, which the loop then keeps."""
  return bool({EMA, SNAPSHOT_ONLINE, SNAPSHOT_EMA} & set(strategy.members))


def select(strategy: Strategy, **kwargs) -> np.ndarray:
  """k distinct indices into `x_unlabeled`, the candidates to label next: `select_scored(...)[0]`.

  Takes the keyword arguments of `select_scored`; draws exactly the same randomness.
  """
  return select_scored(strategy, **kwargs)[0]


def select_scored(strategy: Strategy, *, model, committee: Mapping, x_unlabeled: np.ndarray,
                  x_labeled: np.ndarray, k: int, task: str, mechanism: TopKMechanism | None,
                  rng: np.random.Generator, key: jax.Array, batch_size: int, mc_samples: int = 20,
                  mc_dropout: float = 0.3) -> tuple[np.ndarray, np.ndarray | None]:
  """The k candidates to label next, beside the unnoised scores they were selected from.

  Args:
    strategy: the query strategy (`get(al.strategy)`).
    model: the Flax module the committee's parameter sets belong to.
    committee: named parameter sets, at least `strategy.members` (e.g. {'online': params}).
    x_unlabeled, x_labeled: the candidates, and the labeled inputs (core-set reads them).
    k: how many to select, 0 ≤ k ≤ len(x_unlabeled).
    task: 'multiclass' or 'multilabel'.
    mechanism: the private release of the plan's query (`QueryRound.mechanism`, a
      `privacy.mechanisms` object), or None for the exact, non-private top-k.
    rng: the NumPy source of the mechanism's noise and of random draws.
    key: the JAX key of dropout passes (BALD) and BADGE's seeding.
    batch_size, mc_samples, mc_dropout: padded scoring batch; BALD's passes and dropout rate.

  Returns:
    (picks, sensitive_scores): k distinct int64 indices into `x_unlabeled`, and the strategy's unclamped,
    unnoised score of every candidate (None for a strategy that picks by itself). The scores are
    computed from private data without noise: they are for diagnostics (`selection_fidelity`) that stay
    out of every released output, never for a decision.

  Scores are clamped to [0, strategy.clamp] and released through `mechanism`, the same object whose
  `dp_event()` the ledger charges every candidate. Raises ConfigError when a private selection is asked
  of a strategy without a mechanism, and ValueError when `committee` lacks a member the strategy reads.
  """
  if task not in TASKS:
    raise ValueError(f'task must be one of {TASKS}, got {task!r}')
  if not 0 <= k <= len(x_unlabeled):
    raise ConfigError(f'al.query_sizes asks for {k} examples but the pool has {len(x_unlabeled)} '
                      'unlabeled; lower al.query_sizes or al.labeling_budget')
  check_selection(strategy, private=mechanism is not None)
  if task == 'multilabel' and not strategy.multilabel:
    raise ConfigError(f'al.strategy {strategy.name!r} needs single-label data, but the dataset is '
                      'multi-label; choose entropy, confidence or bald')
  missing = [m for m in strategy.members if m not in committee]
  if missing:
    raise ValueError(f'al.strategy {strategy.name!r} reads the parameter sets {missing}; the committee '
                     f'holds {sorted(committee)}')
  params = (None if not strategy.members else committee[strategy.members[0]]
            if len(strategy.members) == 1 else tuple(committee[m] for m in strategy.members))
  if strategy.pick is not None:
    return np.asarray(strategy.pick(model=model, params=params, x_unlabeled=x_unlabeled,
                                      x_labeled=x_labeled, k=k, task=task, rng=rng, key=key,
                                      batch_size=batch_size), np.int64), None
  if strategy.scores is not None:
    scores = strategy.scores(model=model, params=params, x=x_unlabeled, batch_size=batch_size)
  else:
    scores = pool_scores(strategy, model=model, params=params, x=x_unlabeled, task=task, key=key,
                         batch_size=batch_size, mc_samples=mc_samples, mc_dropout=mc_dropout)
  if mechanism is None:
    return top_k.exact_top_k(scores, k), scores
  return mechanism.top_k(scores, k, clamp=strategy.clamp, rng=rng), scores


def selection_fidelity(sensitive_scores: np.ndarray, picks: np.ndarray) -> tuple[float, float]:
  """(fidelity, random baseline): the share of `picks` among the exact top-2k of the scores, and 2k/N.

  A diagnostic of how much a private selection still selects: 1 when every pick is among the 2k best
  scores, ≈ 2k/N (the baseline, capped at 1) when the picks are a uniform draw. Ties at the 2k-th score
  count as inside.

  >>> selection_fidelity(np.array([0.9, 0.1, 0.8, 0.2, 0.3, 0.0]), np.array([0, 1]))
  (0.5, 0.6666666666666666)

  *Formal guarantees*: none — it reads the unnoised scores of private candidates, so it is not DP. The
  loop computes it only under `al.log_fidelity = True`, writes it only to the query's log line (never
  metrics.jsonl, summary.json or the ledger) and never uses it for a decision.
  """
  scores = np.nan_to_num(np.asarray(sensitive_scores, np.float64), nan=-np.inf)
  picks = np.asarray(picks, np.int64)
  n, k = len(scores), len(picks)
  if k == 0 or n == 0:
    return math.nan, math.nan
  cut = np.sort(scores)[::-1][min(2 * k, n) - 1]
  return float(np.mean(scores[picks] >= cut)), min(1.0, 2 * k / n)


def pool_scores(strategy: Strategy, *, model, params, x: np.ndarray, task: str, key: jax.Array,
                batch_size: int, mc_samples: int = 20, mc_dropout: float = 0.3) -> np.ndarray:
  """The strategy's score of every row of `x` (unclamped), in jitted padded batches."""
  if strategy.score is None:
    raise ValueError(f'al.strategy {strategy.name!r} has no per-candidate score')
  samples = 0
  if strategy.mc_dropout:
    if not hasattr(model, 'dropout'):
      raise ConfigError(f'al.strategy {strategy.name!r} needs a model with a dropout rate attribute '
                        f'(MC dropout), which {type(model).__name__} lacks; choose another model.name')
    if mc_samples < 1:
      raise ConfigError(f'al.mc_samples must be at least 1, got {mc_samples}')
    model, samples = model.clone(dropout=mc_dropout), mc_samples
  fn = _batch_scores(model, strategy.score, task == 'multilabel', samples)
  return inference.map_batches(fn, params, x, batch_size=batch_size, key=key)


def check_selection(strategy: Strategy, *, private: bool) -> None:
  """Raises ConfigError when a private selection is asked of a strategy that has no mechanism for it."""
  if private and not strategy.private:
    raise ConfigError(
        f'al.strategy {strategy.name!r} has no private selection mechanism; set privacy.epsilon_al=inf '
        f'to run it non-privately or choose one of: {", ".join(_private_names())}')


def _private_names() -> list[str]:
  return sorted(s.name for s in STRATEGIES.values() if s.private)


@functools.lru_cache(maxsize=32)
def _batch_scores(model, score: Callable, multilabel: bool, mc_samples: int) -> Callable:
  """Jitted (params, x_batch, key) → scores: one forward (or `mc_samples` dropout passes, run one after
  another so that memory stays that of a single pass) and the score, fused in one compiled program."""

  @jax.jit
  def fn(params, x, key):
    variables = {'params': params}
    if mc_samples:
      def one_pass(pass_key):
        return model.apply(variables, x, train=True, rngs={'dropout': pass_key})
      logits = jax.lax.map(one_pass, jax.random.split(key, mc_samples))
    else:
      logits = model.apply(variables, x, train=False)
    return score(uncertainty.probabilities(logits, multilabel=multilabel), multilabel=multilabel)

  return fn
