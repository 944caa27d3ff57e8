"""One DP active-learning experiment: plan → (train → evaluate → checkpoint → query)* → summary.

The privacy plan is computed (and refused if infeasible) before anything is written. Every release — the
parameters after a phase, the selection of a query — is checkpointed together with the ledger entry that
pays for it, so a resumed run (same command, same --workdir) continues exactly where the last one stopped
and never forgets a spend.
"""

import json
import os
import time

import jax
import ml_collections
import numpy as np
from absl import logging

from dpal_jax import checkpointing
from dpal_jax import data
from dpal_jax import evaluation
from dpal_jax import models
from dpal_jax import optim
from dpal_jax import plots
from dpal_jax import workdir as workdir_lib
from dpal_jax.al import strategies
from dpal_jax.data.pool import Pool
from dpal_jax.dpsgd.trainer import Trainer
from dpal_jax.errors import ConfigError
from dpal_jax.privacy import planner
from dpal_jax.privacy.ledger import Ledger
from dpal_jax.privacy.modes import ORIGINAL_MODES
from dpal_jax.privacy.plan import Plan
from dpal_jax.rng import RunRandomness



def run(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Runs (or resumes) the experiment of `config` in `workdir`; returns the summary dict."""
  started = time.time()
  size = {'size': config.dataset.image_size} if config.dataset.get('image_size') else {}
  dataset = data.load(config.dataset.name, data_dir=config.dataset.data_dir,
                      test_size=config.dataset.test_size, seed=0, **size)
  plan = _checked_plan(config, pool_size=len(dataset.x_train))
  _check_workdir_config(config, workdir)

  model = models.get(config.model.name, num_classes=dataset.num_classes, dropout=config.model.dropout)
  trainer = Trainer(model, optim.get(config.train.optimizer, config.train.learning_rate),
                    task=dataset.task, clip_norm=config.train.clip_norm,
                    physical_batch_size=config.train.physical_batch_size,
                    grad_method=config.train.grad_method)
  strategy = strategies.get(config.al.strategy)
  strategies.check_selection(strategy, private=plan.private_queries)  # refuse before writing anything

  checkpointer = checkpointing.Checkpointer(workdir)
  randomness = RunRandomness.create(config.seed)
  init_key = randomness.next_key()
  resuming = checkpointer.latest_stage() is not None  # then the pretrained file is not read again
  state = trainer.init(init_key, dataset.x_train[:1], params=None if resuming else
                       models.pretrained_params(config.model, dataset.num_classes, init_key))
  restored = checkpointer.restore(state)
  if restored is None:
    stage, history, wall = 0, [], 0.0
    pool = Pool.initial(len(dataset.x_train), config.al.initial_size, randomness.rng)
    ledger = Ledger.from_plan(plan)
    workdir_lib.write_json(os.path.join(workdir, 'config.json'), _config_json(config))
    workdir_lib.write_text(os.path.join(workdir, 'plan.json'), plan.to_json())
    logging.info('Started %s; noise is %s.', workdir,
                 'reproducible (config.seed is set)' if randomness.reproducible else
                 'seeded from OS entropy')
  else:
    stage, state, meta = restored.stage, restored.state, restored.meta
    plan = Plan.from_json(workdir_lib.read_text(os.path.join(workdir, 'plan.json')))
    pool, ledger = Pool.from_json(meta['pool']), Ledger.from_json(meta['ledger'])
    randomness, history, wall = RunRandomness.from_json(meta['randomness']), meta['history'], meta['wall']
    workdir_lib.write_jsonl(os.path.join(workdir, 'metrics.jsonl'), history)
    logging.info('Resumed %s at stage %d.', workdir, stage)

  def save(new_stage):
    # ledger.json first: between the two writes it may show a spend whose release is not yet
    # checkpointed (a resume redoes it), never the reverse.
    workdir_lib.write_text(os.path.join(workdir, 'ledger.json'), ledger.to_json())
    checkpointer.save(new_stage, state, {
        'pool': pool.to_json(), 'ledger': ledger.to_json(), 'randomness': randomness.to_json(),
        'history': history, 'wall': wall + time.time() - started})

  for phase in range(len(plan.phases)):
    if phase > 0 and stage < 2 * phase:
      pool = _query(config, plan, strategy, trainer, state, dataset, pool, ledger, randomness, phase)
      stage = 2 * phase
      save(stage)
    if stage < 2 * phase + 1:
      state, row = _train_and_evaluate(config, plan, trainer, state, dataset, pool, ledger, randomness,
                                       phase)
      history.append(row)
      workdir_lib.write_jsonl(os.path.join(workdir, 'metrics.jsonl'), history)
      stage = 2 * phase + 1
      save(stage)
  checkpointer.close()

  summary = _summary(config, plan, dataset, history, ledger, strategy,
                     wall_seconds=wall + time.time() - started)
  workdir_lib.write_json(os.path.join(workdir, 'summary.json'), summary)
  plots.write_all(os.path.join(workdir, 'plots'), history, metric_name=summary['metric'],
                  target_epsilon=plan.target_epsilon)
  return summary


def _checked_plan(config, pool_size: int) -> Plan:
  """The plan, refused when a cohort would end above ε in a mode that promises not to."""
  plan = planner.make_plan(config, pool_size=pool_size)
  if plan.privacy_enabled and plan.mode not in ORIGINAL_MODES and plan.exceeds_target():
    worst = max(*plan.epsilon_per_cohort, plan.epsilon_unlabeled)
    raise ConfigError(
        f'privacy.mode {plan.mode!r} planned ε={worst:.4f} above privacy.epsilon '
        f'({plan.target_epsilon}); lower train.epochs or raise privacy.epsilon')
  return plan


def _config_json(config) -> dict:
  return json.loads(config.to_json_best_effort())


def _check_workdir_config(config, workdir: str) -> None:
  """A workdir belongs to one config: resuming with a different one would mix two experiments."""
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    return
  saved, current = workdir_lib.read_json(path), _config_json(config)
  if saved != current:
    changed = sorted(_diff_keys(saved, current))
    raise ConfigError(
        f'--workdir {workdir} holds a run with a different config (fields: {", ".join(changed)}); '
        'use the same config to resume, or a new --workdir')


def _diff_keys(a, b, prefix=''):
  if not (isinstance(a, dict) and isinstance(b, dict)):
    return [prefix.rstrip('.')] if a != b else []
  out = []
  for key in sorted(set(a) | set(b)):
    out += _diff_keys(a.get(key), b.get(key), f'{prefix}{key}.')
  return out


def _query(config, plan, strategy, trainer, state, dataset, pool, ledger, randomness, phase) -> Pool:
  """Selects and labels the `phase`-th query batch, paying its privacy cost in the ledger first."""
  query = plan.queries[phase - 1] if plan.private_queries else None
  if query is not None:
    ledger.check_query(query)
  unlabeled = pool.unlabeled()
  chosen = strategies.query(
      strategy, model=trainer.model, params=state.params, x_unlabeled=dataset.x_train[unlabeled],
      x_labeled=dataset.x_train[pool.labeled], k=config.al.query_sizes[phase - 1], task=dataset.task,
      query=query, rng=randomness.rng, key=randomness.next_key(),
      batch_size=config.al.query_batch_size, mc_samples=config.al.mc_samples,
      mc_dropout=config.al.mc_dropout)
  if query is not None:
    ledger.record_query(query)
  logging.info('Query %d: labeled %d examples (%s).', phase, len(chosen), strategy.name)
  return pool.label(unlabeled[chosen])


def _train_and_evaluate(config, plan, trainer, state, dataset, pool, ledger, randomness, phase):
  """Trains phase `phase` of the plan on the labeled pool, records its spend, evaluates on the test set."""
  spec = plan.phases[phase]
  rates = pool.sample_rates(spec.sample_rates)
  ledger.check_phase(phase, spec.sample_rates, spec.noise_multiplier, spec.steps)
  started = time.time()
  # Of the phase's stats only the compile count is released: the training loss and the realised
  # Poisson batch sizes come from private data without noise, so they never reach the log or workdir.
  state, stats = trainer.train_phase(
      state, dataset.x_train[pool.labeled], dataset.y_train[pool.labeled], sample_rates=rates,
      steps=spec.steps, noise_multiplier=spec.noise_multiplier,
      expected_batch_size=plan.expected_batch(phase), rng=randomness.rng, key=randomness.next_key(),
      private=config.privacy.enabled, phase=phase)
  ledger.record_phase(phase, spec.sample_rates, spec.noise_multiplier, spec.steps)
  metric_name, value = evaluation.evaluate(trainer.model, state.params, dataset,
                                           batch_size=config.train.eval_batch_size)
  epsilons = ledger.epsilon_per_cohort()
  row = {'phase': phase, 'num_labeled': int(len(pool.labeled)), 'steps': spec.steps,
         'noise_multiplier': spec.noise_multiplier, metric_name: value, 'test_metric': value,
         'epsilon_per_cohort': epsilons, 'epsilon_spent_max': max(epsilons),
         'seconds': time.time() - started}
  logging.info('Phase %d: %d labeled, %d steps (%d compiles), test %s %.4f, max ε %.3f.', phase,
               row['num_labeled'], spec.steps, stats['compiles'], metric_name, value,
               row['epsilon_spent_max'])
  return state, row


def _summary(config, plan, dataset, history, ledger, strategy, wall_seconds: float) -> dict:
  metric_name = evaluation.metric_name(dataset.task)
  return {
      'schema': 'dpal_jax.summary/1',
      'dataset': config.dataset.name,
      'metric': metric_name,
      'phases': [{'phase': row['phase'], 'num_labeled': row['num_labeled'],
                  'test_metric': row['test_metric'], 'epsilon_spent_max': row['epsilon_spent_max']}
                 for row in history],
      'final_test_metric': history[-1]['test_metric'],
      'epsilon_per_cohort': ledger.epsilon_per_cohort(),
      'epsilon_unlabeled': ledger.epsilon_unlabeled(),
      'target_epsilon': plan.target_epsilon,
      'delta': plan.delta,
      'mode': plan.mode,
      'strategy': strategy.name,
      'private_training': bool(config.privacy.enabled),
      'private_selection': bool(plan.private_queries) or strategy.name == 'random',
      'wall_seconds': wall_seconds,
  }
