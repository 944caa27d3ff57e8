"""DP active learning (`loop = 'dpal'`): plan → (train → evaluate → query)* → summary.

Stages: stage 2k+1 trains phase k on the labeled pool (DP-SGD at the plan's per-cohort rates and σ) and
evaluates it; stage 2k+2 runs query k+1 (private top-k of the strategy's scores) and labels its picks as
cohort k+1. Each stage pays for itself in the ledger before it spends (`Ledger.check_*` raises
BudgetExceededError first) and is released by the protocol only after its checkpoint is committed.
"""

import hashlib
import math

import jax
import numpy as np

from dpal_jax import distributed
from dpal_jax import evaluation
from dpal_jax import models
from dpal_jax.al import strategies
from dpal_jax.errors import BudgetExceededError
from dpal_jax.loops import campaign as campaign_lib
from dpal_jax.loops import common
from dpal_jax.loops import ema_phase
from dpal_jax.loops import finetune
from dpal_jax.loops import protocol
from dpal_jax.loops import units as units_lib
from dpal_jax.loops.state import RunState


class Loop(protocol.Loop):
  """The DP-AL loop of the paper, with per-cohort accounting of training and queries."""

  def __init__(self, config):
    self.config = config
    self.dataset = common.load_dataset(config)
    self.units = units_lib.PoolUnits(config, self.dataset)   # persons, groups (docs/budgets.md)
    self.campaign = campaign_lib.from_config(config, len(self.dataset.x_train))  # privacy.ledger_path
    self.plan = self._plan_for(*campaign_lib.pool_view(self.campaign))
    self.num_stages = 2 * len(self.plan.phases) - 1
    self.strategy = strategies.from_config(config.al)
    strategies.check_selection(self.strategy, private=self.plan.private_queries)
    self.ema = strategies.needs_ema(self.strategy)   # LHD: train with an EMA and its snapshot
    self.shuffled = ema_phase.shuffled_batches(config)   # train.batching 'shuffled': non-private epochs
    for phase in range(len(self.plan.phases) if self.ema else 0):
      ema_phase.snapshot_epoch(config, phase)
    self.trainer = common.make_trainer(config, self.dataset,
                                       ema_decay=ema_phase.EMA_DECAY if self.ema else None)
    finetune.check(config, self.dataset.task, by_person=self.units.by_person)
    self.finetune = bool(config.train.get('finetune_confident', False))
    self._finetune_trainer = None   # made from self.trainer once its grad_method is resolved (init)

  def _plan_for(self, candidates, prior):
    pool_size = self.units.pool_size if candidates is None else len(candidates)
    return common.checked_plan(self.config, pool_size=pool_size, prior=prior, groups=self.units.groups)

  # Protocol.

  def reserve(self, workdir: str) -> None:
    if self.campaign is not None:
      self.plan = self.campaign.reserve(workdir, self.plan, self._plan_for)

  def committed(self, state: RunState) -> None:
    campaign_lib.record(self.campaign, 'spend', state)

  def finished(self, state: RunState) -> None:
    campaign_lib.record(self.campaign, 'close', state)

  def start(self, randomness) -> RunState:
    init_key = randomness.next_key()
    train = self.trainer.init(init_key, self.dataset.x_train[:1], params=models.pretrained_params(
        self.config.model, self.dataset.num_classes, init_key))
    pool = campaign_lib.initial_pool(self.campaign, self.units.pool_size, self.config.al.initial_size,
                                     randomness.rng)
    ledger = self.units.mark(campaign_lib.run_ledger(self.campaign, self.plan))
    return RunState(stage=0, train=train, pool=pool, ledger=ledger,
                    randomness=randomness)

  def template(self):
    # Shapes only: the pretrained file is not read again and no run randomness is used.
    return self.trainer.init(jax.random.PRNGKey(0), self.dataset.x_train[:1])

  def check_restored(self, state: RunState) -> None:
    common.check_alternating_stages(state, self.plan, len(campaign_lib.fallback_rounds(self.plan, state)))

  def run_stage(self, state: RunState, stage: int):
    return common.run_alternating_stage(self, state, stage)

  # Stages.

  def _query(self, state: RunState, phase: int):
    """Selects and labels the `phase`-th query batch, paying its privacy cost in the ledger first.

    With `al.log_fidelity` the log line also gives the selection fidelity (`strategies.selection_fidelity`:
    share of the picks in the unnoised top-2k, beside 2k/N). It reads private scores without noise, so it
    is a diagnostic: off by default, in the log line only (never the metrics row, summary or ledger), and
    no decision depends on it."""
    config, dataset, pool = self.config, self.dataset, state.pool
    query = self.plan.queries[phase - 1] if self.plan.private_queries else None
    strategy, fallback = self.strategy, ''
    unpaid = campaign_lib.unpaid_reason(self.campaign, config, self.plan, phase)
    if query is not None and unpaid:   # the budget cannot pay this round: decided before spending
      if config.al.fallback != 'random':
        return campaign_lib.stop(state, f'query {phase}', BudgetExceededError(unpaid))
      strategy, query, fallback = strategies.get('random'), None, campaign_lib.fallback_note(unpaid)
    if query is not None:
      try:
        state.ledger.check_query(query)
      except BudgetExceededError as error:   # only with a persistent ledger: the plan fits otherwise
        if self.campaign is None:
          raise
        return campaign_lib.stop(state, f'query {phase}', error)
    unlabeled = campaign_lib.candidates(self.campaign, pool)
    chosen, sensitive_scores = self.units.select(
        strategy, model=self.trainer.model, committee=ema_phase.committee(state.train),
        x_train=dataset.x_train, unlabeled=unlabeled,
        x_labeled=dataset.x_train[self.units.rows(pool.labeled)],
        k=config.al.query_sizes[phase - 1], task=dataset.task,
        mechanism=None if query is None else query.mechanism, rng=state.randomness.rng,
        key=state.randomness.next_key(), batch_size=config.al.query_batch_size,
        mc_samples=config.al.mc_samples, mc_dropout=config.al.mc_dropout)
    if query is not None:
      state.ledger.record_query(query)
    picked = unlabeled[distributed.from_coordinator(np.asarray(chosen))]  # one selection on every host
    digest = hashlib.sha256(np.asarray(picked, np.int64).tobytes()).hexdigest()[:12]
    log = (f'Query {phase}: labeled {len(picked)} {"persons" if self.units.by_person else "examples"} '
           f'({strategy.name}), selection {digest}.{fallback}')
    # The generator's mark (data.noise_settings) is public for generated examples; under 'class' it also
    # tells which pool images had label 1, a private value without noise, so it is not released there.
    if dataset.noisy is not None and config.dataset.get('noise', 'clean') != 'class':
      rows = self.units.rows(picked)
      log += f' {int(dataset.noisy[rows].sum())} of {len(rows)} selected are noisy.'
    if config.al.get('log_fidelity', False) and sensitive_scores is not None:
      sensitive_fidelity, baseline = strategies.selection_fidelity(sensitive_scores, chosen)
      log += (f' Selection fidelity {sensitive_fidelity:.3f} (random {baseline:.3f}; unnoised scores, '
              'not DP: al.log_fidelity).')
    return state.replace(pool=pool.label(picked)), protocol.Release(log)

  def _train_and_evaluate(self, state: RunState, phase: int):
    """Trains phase `phase` of the plan on the labeled pool, records its spend, evaluates on the test set.

    Of the phase only DP outputs are released: the parameters and what is computed from them on the
    test set. The training loss, the realised Poisson batch sizes, compile counts and the phase's time
    depend on private data without noise, so they never reach the log or the workdir."""
    config, dataset, pool, spec = self.config, self.dataset, state.pool, self.plan.phases[phase]
    try:
      state.ledger.check_phase(phase, spec.sample_rates, spec.noise_multiplier, spec.steps)
    except BudgetExceededError as error:
      if self.campaign is None:
        raise
      return campaign_lib.stop(state, f'phase {phase}', error)
    train = state.train
    if config.train.get('fresh_init', False) and phase > 0:
      train = ema_phase.fresh_state(self.trainer, train, state.randomness.next_key(), dataset.x_train[:1])
    rows, sample_rates, person_of = self.units.training(pool, spec.sample_rates)
    x, y = dataset.x_train[rows], dataset.y_train[rows]
    kwargs = dict(sample_rates=sample_rates, steps=spec.steps,
                  noise_multiplier=spec.noise_multiplier, expected_batch_size=self.plan.expected_batch(phase),
                  rng=state.randomness.rng, key=state.randomness.next_key(), private=config.privacy.enabled,
                  phase=phase, **({} if person_of is None else {'person_of': person_of}))
    if self.ema or self.shuffled:
      train = ema_phase.train_phase(self.trainer, train, x, y, epochs=ema_phase.phase_epochs(config, phase),
                                    fixed_epoch=ema_phase.snapshot_epoch(config, phase),
                                    eval_batch_size=config.train.eval_batch_size,
                                    shuffled_epochs=self.shuffled, **kwargs)
    else:
      train, _ = self.trainer.train_phase(train, x, y, **kwargs)
    state.ledger.record_phase(phase, spec.sample_rates, spec.noise_multiplier, spec.steps)
    if self.finetune:
      if self._finetune_trainer is None:
        self._finetune_trainer = finetune.make_trainer(config, self.trainer)
      finetune_spec = self.plan.finetunes[phase] if self.plan.finetunes else None   # None: non-private
      if finetune_spec is not None:
        state.ledger.check_finetune(finetune_spec)   # every pool example pays, before it is spent
      train = finetune.run(config, self._finetune_trainer, train, x, dataset.x_train[pool.unlabeled()],
                           rng=state.randomness.rng, key=state.randomness.next_key(), spec=finetune_spec,
                           pool_size=self.units.pool_size)
      if finetune_spec is not None:
        state.ledger.record_finetune(finetune_spec)
    row, log = common.phase_release(self.trainer.model, train.params, dataset, state.ledger,
                                    len(pool.labeled), spec, phase, config.train.eval_batch_size)
    return state.replace(train=train, history=state.history + (row,)), protocol.Release(log, row)

  def summary(self, state: RunState) -> dict:
    history, ledger, plan = state.history, state.ledger, self.plan
    private_selection = bool(plan.private_queries) or self.strategy.name == 'random'
    return {
        'schema': 'dpal_jax.summary/1',
        'dataset': self.config.dataset.name,
        'metric': evaluation.metric_name(self.dataset.task),
        'phases': [{'phase': row['phase'], 'num_labeled': row['num_labeled'],
                    'test_metric': row['test_metric'], 'epsilon_spent_max': row['epsilon_spent_max']}
                   for row in history],
        'final_test_metric': history[-1]['test_metric'],
        'epsilon_per_cohort': ledger.epsilon_per_cohort(),
        'epsilon_unlabeled': (ledger.epsilon_unlabeled() if private_selection and plan.privacy_enabled
                              else math.inf),
        'target_epsilon': plan.target_epsilon,
        'delta': plan.delta,
        'mode': plan.mode,
        'strategy': self.strategy.name,
        'private_training': bool(self.config.privacy.enabled),
        'private_selection': private_selection,
        'wall_seconds': state.wall,
    } | campaign_lib.summary(self.campaign, self.plan, state, self.config) | self.units.summary(ledger)
