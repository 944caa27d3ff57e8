"""The audit loop (`loop = 'audit'`): one DP-SGD phase with training canaries, then one top-k round with
query canaries, each turned into an ε lower bound next to the ε it audits.

Stage 1 (training). The labeled set is that of the random baseline (al.initial_size + Σ al.query_sizes
examples, one cohort, the whole privacy.epsilon on training); m = audit.canaries input canaries are each
included by a fair public coin and join that cohort at its Poisson rate q, so the engine's own sampler,
clipping and noise treat them as any member. With plain SGD every iterate θ_t is a release, and the
auditor scores each canary by its gradient alignment over all steps (`scoring`); it guesses "included" for
the audit.guesses highest scores. Claimed: ε of the cohort in the audit's own ledger; the canaries'
privacy is that of every member, since the plan's E[B] (the division) does not count them.

Stage 2 (query, when the config's selection is private). The candidates are the pool's unlabeled rows
(scored by al.strategy with the trained model) and audit.query_canaries slots first in order, each with a
planted score Δ or 0 (`canaries.planted_scores`); the mechanism of one of the config's rounds
(privacy.query_mechanism at its share of privacy.epsilon_al) selects k = audit.query_canaries // 2, and
the auditor guesses "included" for every selected canary. Claimed: ε_q of that mechanism's event.

Both bounds are `statistics.lower_bound` at significance audit.significance and the plan's δ. The run is
an ordinary protocol run in its own workdir (ledger.json covers the training phase; the query round is
reported in audit.json, not charged to the audit's ledger) and writes audit.json (schema
dpal_jax.audit/1). The engine parts a test may replace with a broken one are attributes: `trainer`,
`sampler_class` (the Poisson sampler) and `mechanism` (the selection release).
"""

import functools
import math
import os

import jax
import jax.numpy as jnp
import numpy as np

from dpal_jax import models
from dpal_jax import validate
from dpal_jax import workdir as workdir_lib
from dpal_jax.al import strategies
from dpal_jax.audit import canaries
from dpal_jax.audit import scoring
from dpal_jax.audit import statistics
from dpal_jax.data.pool import Pool
from dpal_jax.dpsgd import sampler
from dpal_jax.errors import CheckpointError
from dpal_jax.errors import ConfigError
from dpal_jax.loops import common
from dpal_jax.loops import protocol
from dpal_jax.loops import random_baseline
from dpal_jax.loops.state import RunState
from dpal_jax.privacy import accounting
from dpal_jax.privacy import mechanisms
from dpal_jax.privacy.ledger import Ledger

SCHEMA = 'dpal_jax.audit/1'
AUDIT_FILE = 'audit.json'

CONFIG_FIELDS = {
    'audit.enabled': validate.boolean,
    'audit.canaries': functools.partial(validate.integer, lo=2, hint='about 1000 canaries is typical'),
    'audit.canary_kind': functools.partial(validate.choice, choices=canaries.KINDS),
    'audit.guesses': validate.positive_int,
    'audit.query_canaries': functools.partial(validate.integer, lo=0, hint='0 skips the query audit'),
    'audit.significance': functools.partial(validate.number, lo=0, hi=1, lo_open=True, hi_open=True,
                                            hint='0.05 gives 95% confidence'),
}


def audit_config(config):
  """The audit of `config`: a copy run as loop 'audit' with plain SGD (the audit reads every iterate)."""
  audited = config.copy_and_resolve_references()
  with audited.unlocked():
    audited.loop = 'audit'
    audited.train.optimizer = 'sgd'
  return audited


class Loop(protocol.Loop):
  """The empirical privacy audit of one config's training and selection (see the module docstring)."""

  CONFIG_FIELDS = CONFIG_FIELDS

  def __init__(self, config):
    self.config = config
    if 'audit' not in config:
      raise ConfigError("audit: the config has no audit section; start from configs/audit.py, or turn a "
                        'config into its audit with add_audit(config) there')
    audit = config.audit
    if config.train.optimizer != 'sgd':
      raise ConfigError(f'train.optimizer ({config.train.optimizer!r}): the audit reads each released '
                        "gradient from consecutive parameters, which needs plain SGD; set "
                        "train.optimizer='sgd'")
    if not config.privacy.enabled:
      raise ConfigError('privacy.enabled is False: there is no claimed ε to audit; set it to True')
    if config.privacy.get('epsilon_al_split', 'fixed') != 'fixed':
      raise ConfigError("privacy.epsilon_al_split 'auto': the audit needs the query budget the run spends, "
                        'and auto chooses it below privacy.epsilon_al; set privacy.epsilon_al to the '
                        "chosen value (python -m dpal_jax.plan prints it) and privacy.epsilon_al_split='fixed'")
    if audit.guesses > audit.canaries:
      raise ConfigError(f'audit.guesses ({audit.guesses}) must be at most audit.canaries '
                        f'({audit.canaries}); lower it or plant more canaries')
    self.dataset = common.load_dataset(config)
    self.training_config = random_baseline.one_phase_config(config)
    self.plan = common.checked_plan(self.training_config, pool_size=len(self.dataset.x_train))
    self.trainer = common.make_trainer(config, self.dataset)
    if audit.canary_kind == 'gradient':
      self.trainer.model = canaries.DiracCanaryModel(self.trainer.model, audit.canaries)
    self.sampler_class = sampler.PoissonSampler
    self.strategy = strategies.get(config.al.strategy)
    self.mechanism = self._query_mechanism()
    self.num_stages = 1 if self.mechanism is None else 2

  def _query_mechanism(self):
    """The release of one of the config's query rounds, or None when there is no private query."""
    config, rounds = self.config, len(self.config.al.query_sizes)
    if (self.config.audit.query_canaries == 0 or rounds == 0 or self.strategy.score is None
        or self.strategy.clamp is None or not 0 < config.privacy.epsilon_al < math.inf):
      return None
    return mechanisms.get(config.privacy.query_mechanism).for_budget(
        config.privacy.epsilon_al, rounds, config.privacy.delta, config.privacy.accountant)

  # Protocol.

  def start(self, randomness) -> RunState:
    init_key = randomness.next_key()
    params = models.pretrained_params(self.config.model, self.dataset.num_classes, init_key)
    if params is not None and self.config.audit.canary_kind == 'gradient':
      params = {'base': params, 'canary': {'kernel': np.zeros((self.config.audit.canaries, 1), np.float32)}}
    train = self.trainer.init(init_key, self.dataset.x_train[:1], params=params)
    pool = Pool.initial(len(self.dataset.x_train), self.training_config.al.initial_size, randomness.rng)
    return RunState(stage=0, train=train, pool=pool, ledger=Ledger.from_plan(self.plan),
                    randomness=randomness)

  def template(self):
    return self.trainer.init(jax.random.PRNGKey(0), self.dataset.x_train[:1])

  def check_restored(self, state: RunState) -> None:
    if len(state.history) != state.stage or state.pool is None:
      raise CheckpointError(f'checkpoint {state.stage} holds {len(state.history)} audit results, which '
                            'does not fit its stage; nothing was changed. Start a new run with a new '
                            '--workdir')

  def run_stage(self, state: RunState, stage: int):
    state, row = self._training_audit(state) if stage == 1 else self._query_audit(state)
    log = (f'Audit of {row["audit"]}: claimed ε {row["claimed_epsilon"]:.3f}, audited lower bound '
           f'{row["lower_bound"]:.3f} at {row["confidence"]:.0%} confidence ({row["correct"]} of '
           f'{row["guesses"]} guesses correct, {row["canaries"]} canaries).')
    return state.replace(history=state.history + (row,)), protocol.Release(log, row)

  def summary(self, state: RunState) -> dict:
    config, plan, spec = self.config, self.plan, self.plan.phases[0]
    rows = {row['audit']: row for row in state.history}
    return {
        'schema': SCHEMA,
        'dataset': config.dataset.name,
        'setting': {'canary_kind': config.audit.canary_kind, 'guesses': config.audit.guesses,
                    'significance': config.audit.significance, 'model': config.model.name,
                    'steps': spec.steps, 'noise_multiplier': spec.noise_multiplier,
                    'sample_rate': spec.sample_rates[0], 'clip_norm': config.train.clip_norm,
                    'learning_rate': config.train.learning_rate, 'labeled': plan.cohort_sizes[0],
                    'accountant': plan.accountant, 'query_mechanism': config.privacy.query_mechanism,
                    'strategy': self.strategy.name},
        'delta': plan.delta,
        'training': rows['training'],
        'query': rows.get('query'),
        'wall_seconds': state.wall,
    }

  def write_outputs(self, state: RunState, workdir: str, summary: dict) -> None:
    """audit.json beside summary.json."""
    workdir_lib.write_json(os.path.join(workdir, AUDIT_FILE), summary)

  # Stages.

  def _row(self, kind: str, claimed: float, bound: statistics.Bound, included: np.ndarray) -> dict:
    return {'audit': kind, 'claimed_epsilon': claimed, 'lower_bound': bound.epsilon,
            'confidence': bound.confidence, 'canaries': int(len(included)),
            'included': int(included.sum()), 'guesses': bound.guesses, 'correct': bound.correct,
            'violation': bool(bound.epsilon > claimed)}

  def _training_audit(self, state: RunState):
    """One DP-SGD phase on the labeled set and the included canaries, scored at every step."""
    config, dataset, trainer, spec = self.config, self.dataset, self.trainer, self.plan.phases[0]
    rng = state.randomness.rng
    gradient = config.audit.canary_kind == 'gradient'
    x_canary, y_canary = (
        canaries.gradient_canaries(config.audit.canaries, dataset.x_train.shape[1:]) if gradient else
        canaries.input_canaries(config.audit.canaries, dataset.x_train.shape[1:], dataset.num_classes,
                                rng))
    included = canaries.coin(config.audit.canaries, rng)
    labeled = state.pool.labeled
    x = np.concatenate([dataset.x_train[labeled], x_canary[included]])
    y = np.concatenate([dataset.y_train[labeled], y_canary[included]])
    rates = np.concatenate([state.pool.sample_rates(spec.sample_rates),
                            np.full(int(included.sum()), spec.sample_rates[0])])
    expected = self.plan.expected_batch(0)
    state.ledger.check_phase(0, spec.sample_rates, spec.noise_multiplier, spec.steps)
    # Whole physical chunks only: one compiled step whatever the batch size (the audit runs once).
    draw = self.sampler_class(rates, physical_batch_size=trainer.physical_batch_size,
                              pad_multiple=trainer.physical_batch_size, rng=rng)
    key, train, scores = state.randomness.next_key(), state.train, np.zeros(config.audit.canaries)
    for step in range(spec.steps):
      before = jax.tree.map(jnp.copy, train.params)   # the step donates the state's buffers
      train, _, finite = trainer.logical_step(
          train, x, y, draw.draw(), key=jax.random.fold_in(key, step),
          noise_multiplier=spec.noise_multiplier, expected_batch_size=expected)
      if not bool(finite):
        raise FloatingPointError(f'audit step {step + 1}/{spec.steps}: non-finite parameters; lower '
                                 'train.learning_rate')
      released = scoring.released_sum(before, train.params, learning_rate=config.train.learning_rate,
                                      expected_batch_size=expected)
      scores += (scoring.dirac(released) if gradient else
                 scoring.alignment(trainer.model, trainer.loss_fn, before, released, x_canary, y_canary,
                                   config.train.clip_norm))
    state.ledger.record_phase(0, spec.sample_rates, spec.noise_multiplier, spec.steps)
    bound = statistics.lower_bound(
        scores[included], scores[~included], threshold=statistics.top_threshold(scores,
                                                                                 config.audit.guesses),
        significance=config.audit.significance, delta=self.plan.delta)
    claimed = state.ledger.epsilon_per_cohort()[0]
    return state.replace(train=train), self._row('training', claimed, bound, included)

  def _query_audit(self, state: RunState):
    """One top-k round over the unlabeled pool and the query canaries, scored by selection."""
    config, dataset, m = self.config, self.dataset, self.config.audit.query_canaries
    rng, clamp = state.randomness.rng, self.strategy.clamp
    unlabeled = state.pool.unlabeled()
    real = strategies.pool_scores(
        self.strategy, model=self.trainer.model, params=state.train.params,
        x=dataset.x_train[unlabeled], task=dataset.task, key=state.randomness.next_key(),
        batch_size=config.al.query_batch_size, mc_samples=config.al.mc_samples,
        mc_dropout=config.al.mc_dropout)
    included = canaries.coin(m, rng)
    # Canary slots first: the slot order is public, and a tie at Δ (a real score clamped there) then
    # goes to a canary, so a release without noise gives away every included canary.
    scores = np.concatenate([canaries.planted_scores(included, clamp), real])
    selected = np.zeros(len(scores), bool)
    selected[self.mechanism.top_k(scores, m // 2, clamp=clamp, rng=rng)] = True
    picked = selected[:m].astype(np.float64)
    bound = statistics.lower_bound(picked[included], picked[~included], threshold=1.0,
                                   significance=config.audit.significance, delta=self.plan.delta)
    claimed = accounting.epsilon([self.mechanism.dp_event()], self.plan.delta, self.plan.accountant)
    return state, self._row('query', claimed, bound, included)
