"""PATE with an active student (`loop = 'pate'`): teachers → (select → noisy vote → train the student)*.

Data. The dataset's pool and test split are divided, by a seeded permutation (`pate.split_seed`, public),
into the sensitive records the teachers learn from, the student's public unlabelled pool and the test
set: with `pate.public_from = 'train'` the first `pate.public_size` pool examples of the permutation are
the public pool and the rest are sensitive (with person ids, whole persons in permuted order until the
public pool holds at least `pate.public_size` examples, so nobody is on both sides); with 'test' (the
2018 setting) the whole pool is sensitive and `pate.public_size` test examples are the public pool, the
rest of the test split the test set.

Stage 1 deals the sensitive records into `pate.num_teachers` partitions (`pate.partition`: whole persons
when the dataset gives person ids, `Dataset.person_id`; records otherwise), trains the teachers as one
stacked model (`pate.teachers`) and computes their vote histogram on every public pool point once. The
histograms are private (no noise): they live only in the owner-only checkpoint, so a resumed run never
retrains the teachers and the teachers' parameters are never written at all.

Stage r + 1 is student round r: the student picks `al.query_sizes[r−1]` public points it has not asked
before (`al.strategy` on its current model; uniform in round 1, when it has no labels), the aggregator
(`pate.aggregators`) answers them, the answered ones become labels (Interactive-GNMax may also label a
point with the student's own confident prediction; ⊥ gives no label and is not asked again), and a fresh
student trains on all labels so far (`pate.student`, non-private: public inputs, DP labels).

Privacy. The ledger's units are the partitions (unit 'partition'); a round records one
`privacy.events.PateRound` with the data-independent cost of its threshold tests and teacher answers,
which every partition pays. Before a round, its worst case (every query tested and answered) is checked
(`Ledger.check`); a round that would overspend is cut to the most queries whose worst case fits, and the
loop ends when none fits. The guaranteed ε is the ledger's. The data-dependent ε (`privacy.pate_rdp.
analyze` on the realised votes) is computed from the votes without noise, so it is not DP: it is written
only to the owner-only WORKDIR/private/pate_data_dependent.json (with the smooth-sensitivity release's
parameters and cost, and the teachers' test accuracy spread), never to summary.json, and nothing is
decided by it.
"""

import dataclasses
import functools
import math
import os

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from dpal_jax import evaluation
from dpal_jax import models
from dpal_jax import optim
from dpal_jax import validate
from dpal_jax import workdir as workdir_lib
from dpal_jax.al import strategies
from dpal_jax.dpsgd.train_state import TrainState
from dpal_jax.errors import BudgetExceededError
from dpal_jax.errors import CheckpointError
from dpal_jax.errors import ConfigError
from dpal_jax.loops import common
from dpal_jax.loops import protocol
from dpal_jax.loops.state import RunState
from dpal_jax.pate import aggregators
from dpal_jax.pate import partition
from dpal_jax.pate import student
from dpal_jax.pate import teachers as teachers_lib
from dpal_jax.privacy import events
from dpal_jax.privacy.ledger import Ledger

SCHEMA = 'dpal_jax.pate_summary/1'
PRIVATE_FILE = os.path.join('private', 'pate_data_dependent.json')
NOT_ASKED = -1   # `PateState.source` of a public point never sent to the teachers

_POSITIVE = functools.partial(validate.number, lo=0, lo_open=True)
_OPTIONAL_POSITIVE = functools.partial(validate.optional, _POSITIVE)

CONFIG_FIELDS = {
    'pate.num_teachers': validate.positive_int,
    'pate.public_from': functools.partial(validate.choice, choices=('train', 'test')),
    'pate.public_size': validate.positive_int,
    'pate.split_seed': functools.partial(validate.integer, lo=0),
    'pate.aggregator': functools.partial(validate.choice, choices=aggregators.AGGREGATORS),
    'pate.laplace_scale': _OPTIONAL_POSITIVE,
    'pate.sigma1': _OPTIONAL_POSITIVE,
    'pate.sigma2': _OPTIONAL_POSITIVE,
    'pate.threshold': functools.partial(validate.optional, validate.number),
    'pate.student_weight': functools.partial(validate.number, lo=0),
    'pate.student_confidence': functools.partial(validate.number, lo=0, hi=1),
    'pate.teacher_steps': validate.positive_int,
    'pate.teacher_batch_size': validate.positive_int,
    'pate.teacher_learning_rate': _POSITIVE,
    'pate.teacher_hidden': functools.partial(validate.optional, functools.partial(
        validate.sequence, validate.positive_int)),
    'pate.teacher_chunk': functools.partial(validate.integer, lo=0, hint='0 trains all teachers at once'),
}


@flax.struct.dataclass
class PateState:
  """The arrays a round carries: the student; per public pool point its private vote histogram
  (`votes`, owner-only), who labelled it (`source`: NOT_ASKED or an `aggregators` source) and its label;
  each teacher's test accuracy (`teacher_accuracy`, private: teachers train without noise)."""
  student: TrainState
  votes: jax.Array
  source: jax.Array
  labels: jax.Array
  teacher_accuracy: jax.Array

  @property
  def params(self):
    """The student's parameters: the run's model export."""
    return self.student.params


class Loop(protocol.Loop):
  """PATE with an active student (see the module docstring)."""

  CONFIG_FIELDS = CONFIG_FIELDS

  def __init__(self, config):
    self.config = config
    if 'pate' not in config:
      raise ConfigError("pate: the config has no pate section; start from configs/pate_mnist5k.py")
    pate = config.pate
    self.aggregator = aggregators.from_config(pate)
    dataset = common.load_dataset(config)
    if dataset.task != 'multiclass':
      raise ConfigError(f'dataset.name {config.dataset.name!r} is multi-label; PATE votes on one class '
                        'per example: choose a single-label dataset')
    self.dataset, sensitive, public = _split(dataset, pate)
    self.x_sensitive, self.y_sensitive = dataset.x_train[sensitive], dataset.y_train[sensitive]
    self.x_public, self.y_public = public
    persons = _person_id(dataset)
    self.partitions = partition.split(len(sensitive), pate.num_teachers, seed=pate.split_seed,
                                      groups=None if persons is None else np.asarray(persons)[sensitive])
    if sum(config.al.query_sizes) > len(self.x_public):
      raise ConfigError(f'al.query_sizes asks {sum(config.al.query_sizes)} queries of a public pool of '
                        f'{len(self.x_public)}; lower al.query_sizes or raise pate.public_size')
    self.trainer = common.make_trainer(config, self.dataset)
    self.strategy = strategies.get(config.al.strategy)
    hidden = {} if pate.teacher_hidden is None else {'hidden': tuple(pate.teacher_hidden)}
    if hidden and config.model.name != 'mlp':
      raise ConfigError(f'pate.teacher_hidden is set but model.name is {config.model.name!r}; it sizes '
                        "the 'mlp' only: unset it")
    self.teachers = teachers_lib.StackedTeachers(
        models.get(config.model.name, num_classes=dataset.num_classes, dropout=0.0, **hidden),
        optim.get(config.train.optimizer, pate.teacher_learning_rate), steps=pate.teacher_steps,
        batch_size=pate.teacher_batch_size, chunk=pate.teacher_chunk or None)
    if isinstance(config.train.epochs, (list, tuple)):
      raise ConfigError('train.epochs: the PATE student trains each round for one number of epochs; '
                        'give one number')
    self.num_stages = 1 + len(config.al.query_sizes)

  # Protocol.

  def _ledger(self) -> Ledger:
    privacy = self.config.privacy
    return Ledger(privacy.accountant, privacy.delta, privacy.epsilon,
                  (None,) * self.partitions.num_teachers, unit='partition')

  def _empty(self, student_state) -> PateState:
    p, c = len(self.x_public), self.dataset.num_classes
    return PateState(student=student_state, votes=jnp.zeros((p, c), jnp.int32),
                     source=jnp.full((p,), NOT_ASKED, jnp.int32), labels=jnp.zeros((p,), jnp.int32),
                     teacher_accuracy=jnp.zeros((self.partitions.num_teachers,), jnp.float32))

  def start(self, randomness) -> RunState:
    train = self._empty(self.trainer.init(randomness.next_key(), self.x_public[:1]))
    return RunState(stage=0, train=train, pool=None, ledger=self._ledger(), randomness=randomness)

  def template(self):
    return self._empty(self.trainer.init(jax.random.PRNGKey(0), self.x_public[:1]))

  def check_restored(self, state: RunState) -> None:
    rounds = len(state.ledger.events[events.PateRound.kind])
    if len(state.history) != state.stage - 1 or rounds > len(state.history) or \
        state.ledger.labeled_at != self._ledger().labeled_at:
      raise CheckpointError(f'checkpoint {state.stage} holds {len(state.history)} student rounds and '
                            f'{rounds} PATE rounds, which does not fit its stage; nothing was changed. '
                            'Start a new run with a new --workdir')

  def run_stage(self, state: RunState, stage: int):
    return self._teachers(state) if stage == 1 else self._round(state, stage - 1)

  # Stages.

  def _teachers(self, state: RunState):
    """Trains the stacked teachers and keeps only their votes on the public pool (owner-only)."""
    randomness = state.randomness
    params = self.teachers.train(randomness.next_key(), randomness.next_key(), self.x_sensitive,
                                 self.y_sensitive, self.partitions)
    votes = self.teachers.votes(params, self.x_public, num_classes=self.dataset.num_classes,
                                batch_size=self.config.train.eval_batch_size)
    sizes = self.partitions.sizes
    log = (f'Teachers: {len(sizes)} trained on {len(self.x_sensitive)} sensitive records (one partition '
           f'per {self.partitions.unit}, {sizes.min()}–{sizes.max()} records each); their votes on the '
           f'{len(self.x_public)} public pool points are kept in the owner-only checkpoint.')
    accuracy = self.teachers.accuracies(params, self.dataset.x_test, self.dataset.y_test,
                                        batch_size=self.config.train.eval_batch_size)
    train = state.train.replace(votes=jnp.asarray(votes), teacher_accuracy=jnp.asarray(accuracy, jnp.float32))
    return state.replace(train=train), protocol.Release(log)

  def _fitting(self, ledger: Ledger, round_: int, wanted: int) -> int:
    """The most queries ≤ `wanted` whose worst case (all tested, all answered) the budget still allows.

    It reads only the ledger, which holds released counts: the decision is post-processing."""
    def fits(k):
      try:
        ledger.check(self.aggregator.worst_case(round_, k))
        return True
      except BudgetExceededError:
        return False
    if fits(wanted):
      return wanted
    lo, hi = 0, wanted   # fits(lo), not fits(hi)
    while hi - lo > 1:
      mid = (lo + hi) // 2
      lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo

  def _round(self, state: RunState, round_: int):
    """Student round `round_`: select, ask the aggregator, record the round's cost, train, evaluate."""
    config, randomness, train = self.config, state.randomness, state.train
    source, labels = np.asarray(train.source), np.asarray(train.labels)
    candidates = np.flatnonzero(source == NOT_ASKED)
    labelled = np.flatnonzero(source > aggregators.ABSTAINED)
    k = self._fitting(state.ledger, round_, min(config.al.query_sizes[round_ - 1], len(candidates)))
    if k:
      picked = candidates[student.select(
          self.strategy, model=self.trainer.model, params=train.student.params,
          x_candidates=self.x_public[candidates], x_labeled=self.x_public[labelled], k=k,
          rng=randomness.rng, key=randomness.next_key(), batch_size=config.al.query_batch_size,
          mc_samples=config.al.mc_samples, mc_dropout=config.al.mc_dropout)]
      probs = (student.probabilities(self.trainer.model, train.student.params, self.x_public[picked],
                                     batch_size=config.train.eval_batch_size)
               if self.aggregator.needs_student else None)
      answers = self.aggregator.answer(np.asarray(train.votes)[picked], randomness.next_key(), probs)
      state.ledger.record(self.aggregator.event(round_, tested=k, answered=answers.answered))
      source, labels = source.copy(), labels.copy()
      source[picked], labels[picked] = answers.source, answers.labels
      labelled = np.flatnonzero(source > aggregators.ABSTAINED)
      student_state = student.train(
          self.trainer, randomness.next_key(), self.x_public[labelled], labels[labelled],
          epochs=config.train.epochs, batch_size=config.train.batch_size, rng=randomness.rng,
          key=randomness.next_key())
      train = train.replace(student=student_state, source=jnp.asarray(source), labels=jnp.asarray(labels))
    metric_name, value = evaluation.evaluate(self.trainer.model, train.student.params, self.dataset,
                                             batch_size=config.train.eval_batch_size)
    counts = {name: int(np.sum(source == code)) for name, code in (
        ('answered', aggregators.TEACHERS), ('abstained', aggregators.ABSTAINED),
        ('student_labelled', aggregators.STUDENT))}
    row = {'round': round_, 'queries': k, 'queries_total': int(np.sum(source != NOT_ASKED)), **counts,
           'num_labeled': int(len(labelled)), metric_name: value, 'test_metric': value,
           'label_accuracy': student.label_accuracy(labels[labelled], self.y_public[labelled]),
           'epsilon': max(state.ledger.epsilon_per_unit()), 'budget_exhausted': k == 0}
    log = (f'Round {round_}: {k} queries, {counts["answered"]} answered in all, {row["num_labeled"]} '
           f'labels, test {metric_name} {value:.4f}, guaranteed ε {row["epsilon"]:.3f}.'
           if k else f'Round {round_}: not run: one more query could take a partition above ε = '
           f'{config.privacy.epsilon}; the budget is spent. Test {metric_name} {value:.4f}.')
    return state.replace(train=train, history=state.history + (row,)), protocol.Release(log, row)

  def summary(self, state: RunState) -> dict:
    config, history = self.config, state.history
    last = history[-1] if history else {}
    return {
        'schema': SCHEMA,
        'dataset': config.dataset.name,
        'metric': evaluation.metric_name(self.dataset.task),
        'aggregator': {'name': self.aggregator.name, 'laplace_scale': self.aggregator.laplace_scale,
                       'sigma1': self.aggregator.sigma1, 'sigma2': self.aggregator.sigma2,
                       'threshold': self.aggregator.threshold},
        'num_teachers': self.partitions.num_teachers,
        'partition_unit': self.partitions.unit,
        'sizes': {'sensitive': len(self.x_sensitive), 'public': len(self.x_public),
                  'test': len(self.dataset.x_test)},
        'strategy': self.strategy.name,
        'rounds': [{key: row[key] for key in ('round', 'queries', 'queries_total', 'answered', 'abstained',
                                                'student_labelled', 'test_metric', 'label_accuracy',
                                                'epsilon')} for row in history],
        'final_test_metric': last.get('test_metric'),
        'queries': last.get('queries_total', 0),
        'answered': last.get('answered', 0),
        'abstained': last.get('abstained', 0),
        'student_labelled': last.get('student_labelled', 0),
        'label_accuracy': last.get('label_accuracy'),
        'epsilon_guaranteed': max(state.ledger.epsilon_per_unit()),
        'target_epsilon': config.privacy.epsilon,
        'delta': config.privacy.delta,
        'accountant': config.privacy.accountant,
        'budget_exhausted': any(row['budget_exhausted'] for row in history),
        'data_dependent_epsilon': {
            'released': False, 'file': PRIVATE_FILE,
            'why': 'computed from the teachers\' votes without noise, so not DP: written only to the '
                   'owner-only file; the guaranteed ε above is the one every spend was checked against'},
        'wall_seconds': state.wall,
    }

  def write_outputs(self, state: RunState, workdir: str, summary: dict) -> None:
    """The data-dependent analysis of the realised votes, in the owner-only WORKDIR/private/."""
    folder = os.path.join(workdir, os.path.dirname(PRIVATE_FILE))
    os.makedirs(folder, mode=workdir_lib.SECRET_DIR_MODE, exist_ok=True)
    workdir_lib.make_secret(folder)
    workdir_lib.write_text(os.path.join(workdir, PRIVATE_FILE),
                           workdir_lib.json_text(self._data_dependent(state)),
                           mode=workdir_lib.SECRET_FILE_MODE)

  def _data_dependent(self, state: RunState) -> dict:
    """`pate_rdp.analyze` of the tested queries' votes; not DP (see the module docstring)."""
    from dpal_jax.privacy import pate_rdp  # pylint: disable=g-import-not-at-top
    source, agg = np.asarray(state.train.source), self.aggregator
    accuracy = np.asarray(state.train.teacher_accuracy, np.float64)
    note = {'not_dp': 'computed from the private votes and teachers without noise; for the data owner '
                      'only. The smooth-sensitivity (GNSS) fields state the noise and the cost of a '
                      'sanitised release; no budget decision used any of it.',
            'teacher_test_accuracy': {'min': accuracy.min(), 'median': float(np.median(accuracy)),
                                      'max': accuracy.max(), 'per_teacher': accuracy.round(4).tolist()}}
    if agg.name not in ('gnmax', 'confident_gnmax'):
      return _plain(note | {'analysis': None, 'why': f'no data-dependent analysis of {agg.name}'})
    tested = np.asarray(state.train.votes)[source != NOT_ASKED]
    kwargs = {} if agg.name == 'gnmax' else {'threshold': agg.threshold, 'sigma1': agg.sigma1}
    analysis = pate_rdp.analyze(tested, aggregator=agg.name, sigma2=agg.sigma2,
                                delta=self.config.privacy.delta, smooth_sensitivity=True, **kwargs)
    return _plain(note | {'queries': int(len(tested)), 'analysis': analysis})


def _plain(value):
  """JSON-ready: NumPy scalars and arrays as Python numbers and lists, non-finite numbers as None."""
  if isinstance(value, dict):
    return {k: _plain(v) for k, v in value.items()}
  if isinstance(value, (list, tuple, np.ndarray)):
    return [_plain(v) for v in np.asarray(value).tolist()] if isinstance(value, np.ndarray) else \
        [_plain(v) for v in value]
  if isinstance(value, (float, np.floating)):
    return float(value) if math.isfinite(value) else None
  if isinstance(value, np.integer):
    return int(value)
  return value


def _person_id(dataset):
  """The person of each pool example (`Dataset.person_id`), or None when the dataset has none."""
  return getattr(dataset, 'person_id', None)


def _split(dataset, pate):
  """(dataset with the student's test split, the sensitive pool rows, (x, y) of the public pool), by the
  seeded, public split of the module docstring."""
  rng = np.random.default_rng(pate.split_seed)
  source = dataset.x_train if pate.public_from == 'train' else dataset.x_test
  if pate.public_size >= len(source):
    raise ConfigError(f'pate.public_size ({pate.public_size}) must be below the {len(source)} examples of '
                      f'the {pate.public_from} split it is taken from; lower it')
  persons = _person_id(dataset) if pate.public_from == 'train' else None
  if persons is None:
    order = rng.permutation(len(source))
    public, rest = order[:pate.public_size], np.sort(order[pate.public_size:])
  else:   # whole persons: a person's records are all public or all sensitive
    ids, inverse, counts = np.unique(np.asarray(persons), return_inverse=True, return_counts=True)
    order = rng.permutation(len(ids))
    taken = order[:int(np.searchsorted(np.cumsum(counts[order]), pate.public_size)) + 1]
    is_public = np.isin(inverse.reshape(-1), taken)
    public, rest = np.flatnonzero(is_public), np.flatnonzero(~is_public)
    if not len(rest):
      raise ConfigError(f'pate.public_size ({pate.public_size}) leaves no person to the teachers; lower it')
  if pate.public_from == 'train':
    return dataset, rest, (dataset.x_train[public], dataset.y_train[public])
  student_test = dataclasses.replace(dataset, x_test=dataset.x_test[rest], y_test=dataset.y_test[rest])
  return (student_test, np.arange(len(dataset.x_train)),
          (dataset.x_test[public], dataset.y_test[public]))
