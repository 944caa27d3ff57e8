"""Peer Study Learning (`loop = 'psl'`): a cloud task learner, P client peers, peer-study feedback queries.

Stages are the DP-AL loop's (`loops.dpal`): stage 2k+1 trains the task learner ("teacher", `config.model`)
on the labeled pool for phase k — DP-SGD at the plan's rates and σ when privacy.enabled — evaluates it,
and then (before every query) lets the peers study (`_study`); stage 2k+2 selects the next labels by the
peers' disagreement (`al.strategy` 'peer_study': summed pairwise KL, exact top-k; 'peer_study_js': mean
pairwise Jensen–Shannon in [0, log 2], through the plan's private top-k, charged to every candidate).
The pool is split first (`psl.protected`): a fraction psl.protected_fraction of it is protected, dealt
to psl.clients clients and never labeled, sent to the teacher or selected; only the labeling pool (the
unprotected examples) reaches the labeling, teacher and query code. Each client's peers study on its own
data only; the clients' peers are then averaged (FedAvg) into the peers that score the next query.

What the peers read, and what it costs:
- privacy.enabled = False (the source algorithm, no guarantee): in-class study on the client's labeled
  examples (labels and the teacher's logits), out-of-class study on its unlabeled and protected examples.
- privacy.enabled = True: the peers read no labeled example and no candidate. Each client's peers study
  on its protected inputs only: in-class against the teacher's predictions on them (its argmax as the
  label, its logits as the soft target), computed on the client from the released DP teacher parameters,
  and out-of-class on the same inputs. So the peers are a function of the DP teacher and of protected
  data, and never of an unprotected example.

*Formal guarantees* (privacy.enabled): every unprotected example — labeled cohort or candidate — gets the
(ε, δ) the ledger composes for its unit (`privacy.ledger`), all-inclusive: the teacher's DP-SGD phases
charge the labeled cohorts; the peers are post-processing of the DP teacher for these units (they read
none of them), so each candidate's score depends on the other candidates only through DP outputs and on
itself only through its own row, bounded in [0, log 2] (`al.peer_study.mean_js`): replacing it changes
its one score by at most log 2, which is the sensitivity the private top-k (`privacy.mechanisms`) is
calibrated on, and each query is charged to every candidate unit (`Ledger.check_query` before,
`record_query` after). Protected examples get no DP guarantee (`epsilon_protected` = ∞ in the summary):
they are never labeled or uploaded, but the peers learn from them without noise and the selection the
peers make is released; their protection is the source's data isolation, nothing more. With
psl.protected_fraction = 0 there is nothing the peers may learn from under privacy, and the loop refuses.
The peers' batches are drawn with the run's streams, independent of the data; what the peers give on the
test set (the released `peer_test_metric`) is post-processing like the query. See docs/psl.md §5.
"""

import functools
import hashlib
import math

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from dpal_jax import distributed
from dpal_jax import evaluation
from dpal_jax import models
from dpal_jax import validate
from dpal_jax.al import strategies
from dpal_jax.data.pool import Pool
from dpal_jax.dpsgd.train_state import TrainState
from dpal_jax.errors import ConfigError
from dpal_jax.loops import common
from dpal_jax.loops import protocol
from dpal_jax.loops.state import RunState
from dpal_jax.models import inference
from dpal_jax.privacy.ledger import Ledger
from dpal_jax.psl import peers as peers_lib
from dpal_jax.psl import protected

PEER_STRATEGIES = ('peer_study', 'peer_study_js')
_FRACTION = functools.partial(validate.number, lo=0, hi=1, hi_open=True)
_POSITIVE = functools.partial(validate.number, lo=0, lo_open=True)
CONFIG_FIELDS = {
    'psl.peers': functools.partial(validate.integer, lo=2, hint='the source uses a few peers, e.g. 3'),
    'psl.peer_model': functools.partial(validate.choice, choices=models.MODELS),
    'psl.peer_learning_rate': _POSITIVE,
    'psl.peer_steps': validate.positive_int,
    'psl.peer_batch_size': validate.positive_int,
    'psl.out_weight': functools.partial(validate.number, lo=0, hint='0 turns out-of-class study off'),
    'psl.alpha': functools.partial(validate.number, lo=0, hi=1),
    'psl.tau': _POSITIVE,
    'psl.xi': functools.partial(validate.number, lo=0),
    'psl.protected_fraction': _FRACTION,
    'psl.clients': validate.positive_int,
    'psl.split_seed': functools.partial(validate.integer, lo=0),
}


@flax.struct.dataclass
class PslTrain:
  """The train state of a PSL run: the teacher's (exported as the run's model) and the global peers."""
  teacher: TrainState
  peers: dict

  @property
  def params(self):
    return self.teacher.params


class Loop(protocol.Loop):
  """Peer Study Learning with the DP-AL loop's plan, ledger and stages (see the module docstring)."""

  CONFIG_FIELDS = CONFIG_FIELDS

  def __init__(self, config):
    self.config = config
    if 'psl' not in config:
      raise ConfigError("psl: the config has no psl section; start from configs/psl_mnist5k.py")
    psl = config.psl
    for field in ('ledger_path', 'group_epsilon'):
      if config.privacy.get(field):
        raise ConfigError(f'privacy.{field}: the psl loop keeps no persistent or per-group budgets; '
                          'unset it (or use loop dpal)')
    dataset = common.load_dataset(config)
    if dataset.task != 'multiclass':
      raise ConfigError(f'dataset.name {config.dataset.name!r} is multi-label; the psl loop needs '
                        'single-label data')
    if config.al.strategy not in PEER_STRATEGIES:
      raise ConfigError(f'al.strategy ({config.al.strategy!r}): the psl loop selects by peer study; '
                        f'choose one of {", ".join(PEER_STRATEGIES)}')
    if config.privacy.enabled and psl.protected_fraction == 0:
      raise ConfigError('psl.protected_fraction is 0 with privacy.enabled: the peers may learn only from '
                        'protected data under privacy (they must not read a labeled example or a '
                        'candidate); set psl.protected_fraction > 0 or privacy.enabled = False')
    self.split = protected.split(dataset, protected_fraction=psl.protected_fraction,
                                 num_clients=psl.clients, seed=psl.split_seed)
    self.dataset = self.split.labeling   # the only pool the labeling, teacher and query code sees
    self.plan = common.checked_plan(config, pool_size=len(self.dataset.x_train))
    self.num_stages = 2 * len(self.plan.phases) - 1
    self.trainer = common.make_trainer(config, self.dataset)
    self.strategy = strategies.get(config.al.strategy)
    strategies.check_selection(self.strategy, private=self.plan.private_queries)
    self.member = models.get(psl.peer_model, num_classes=dataset.num_classes, dropout=0.0)
    self.peer_optimizer = optax.adam(psl.peer_learning_rate)

  # Protocol.

  def start(self, randomness) -> RunState:
    init_key = randomness.next_key()
    teacher = self.trainer.init(init_key, self.dataset.x_train[:1], params=models.pretrained_params(
        self.config.model, self.dataset.num_classes, init_key))
    pool = Pool.initial(len(self.dataset.x_train), self.config.al.initial_size, randomness.rng)
    return RunState(stage=0, train=PslTrain(teacher, self._init_peers(randomness.next_key())), pool=pool,
                    ledger=Ledger.from_plan(self.plan), randomness=randomness)

  def template(self):
    # Shapes only: the pretrained file is not read again and no run randomness is used.
    return PslTrain(self.trainer.init(jax.random.PRNGKey(0), self.dataset.x_train[:1]),
                    self._init_peers(jax.random.PRNGKey(0)))

  def _init_peers(self, key):
    return peers_lib.init(self.member, jax.random.split(key, self.config.psl.peers),
                          self.dataset.x_train[:1])

  def check_restored(self, state: RunState) -> None:
    common.check_alternating_stages(state, self.plan)

  def run_stage(self, state: RunState, stage: int):
    return common.run_alternating_stage(self, state, stage)

  # Stages.

  def _train_and_evaluate(self, state: RunState, phase: int):
    """The teacher's phase `phase` of the plan on the labeled pool (spend checked, then recorded), its
    test metric, and, when a query follows, the peers' study and their ensemble's test accuracy.

    Of the teacher's phase only DP outputs are released (its parameters and what they give on the test
    set); the training loss and the realised Poisson batch sizes stay out of every log line and file."""
    config, dataset, pool, spec = self.config, self.dataset, state.pool, self.plan.phases[phase]
    state.ledger.check_phase(phase, spec.sample_rates, spec.noise_multiplier, spec.steps)
    teacher, _ = self.trainer.train_phase(
        state.train.teacher, dataset.x_train[pool.labeled], dataset.y_train[pool.labeled],
        sample_rates=pool.sample_rates(spec.sample_rates), steps=spec.steps,
        noise_multiplier=spec.noise_multiplier, expected_batch_size=self.plan.expected_batch(phase),
        rng=state.randomness.rng, key=state.randomness.next_key(), private=config.privacy.enabled,
        phase=phase)
    state.ledger.record_phase(phase, spec.sample_rates, spec.noise_multiplier, spec.steps)
    row, log = common.phase_release(self.trainer.model, teacher.params, dataset, state.ledger,
                                    len(pool.labeled), spec, phase, config.train.eval_batch_size)
    metric_name = evaluation.metric_name(dataset.task)
    peers = state.train.peers
    if phase < len(self.plan.phases) - 1:
      peers = self._study(teacher.params, peers, pool, state.randomness.rng)
      _, peer_value = evaluation.evaluate(peers_lib.StackedPeers(self.member, ensemble=True), peers,
                                          dataset, batch_size=config.train.eval_batch_size)
      row['peer_test_metric'] = peer_value
      log += f' Peers: test {metric_name} {peer_value:.4f} (ensemble).'
    return (state.replace(train=PslTrain(teacher, peers), history=state.history + (row,)),
            protocol.Release(log, row))

  def _study(self, teacher_params, global_peers, pool: Pool, rng: np.random.Generator):
    """Every client's peers study on the client's own data from `global_peers`; their FedAvg."""
    studied, weights = [], []
    for client in self.split.clients:
      data = self.client_data(client, teacher_params, pool)
      if data is None:
        continue
      studied.append(self._local_study(global_peers, data, rng))
      weights.append(len(data['x_in']) + len(data['x_out']))
    return peers_lib.fedavg(studied, weights) if studied else global_peers

  def client_data(self, client: protected.Client, teacher_params, pool: Pool) -> dict | None:
    """What one client's peers study on (see the module docstring), or None when it has nothing."""
    x_protected = client.protected.for_client_study()
    if self.config.privacy.enabled:
      if not len(x_protected):
        return None
      teacher = self._teacher_logits(teacher_params, x_protected)
      return {'x_in': x_protected, 'y_in': np.argmax(teacher, axis=-1), 'teacher_in': teacher,
              'x_out': x_protected}
    labeled = np.isin(client.public, pool.labeled)
    mine, unlabeled = client.public[labeled], client.public[~labeled]
    if not len(mine):
      return None
    x_in = self.dataset.x_train[mine]
    return {'x_in': x_in, 'y_in': self.dataset.y_train[mine],
            'teacher_in': self._teacher_logits(teacher_params, x_in),
            'x_out': np.concatenate([self.dataset.x_train[unlabeled], x_protected])}

  def _teacher_logits(self, teacher_params, x):
    return inference.predict(self.trainer.model, teacher_params, x,
                             batch_size=self.config.train.eval_batch_size)

  def _local_study(self, params, data: dict, rng: np.random.Generator):
    """psl.peer_steps steps of Σ_p L_in + λ·L_out on batches drawn from one client's data."""
    psl = self.config.psl
    out_weight = float(psl.out_weight) if len(data['x_out']) > 1 else 0.0
    opt_state = self.peer_optimizer.init(params)
    for _ in range(psl.peer_steps):
      rows_in = _draw(rng, len(data['x_in']), psl.peer_batch_size)
      rows_out = _draw(rng, len(data['x_out']), psl.peer_batch_size)
      batch = {'x_in': jnp.asarray(data['x_in'][rows_in]), 'y_in': jnp.asarray(data['y_in'][rows_in]),
               'teacher_in': jnp.asarray(data['teacher_in'][rows_in]),
               'x_out': jnp.asarray(data['x_out'][rows_out])}
      params, opt_state = peers_lib.study_step(
          self.member, self.peer_optimizer, params, opt_state, batch, out_weight=out_weight,
          alpha=float(psl.alpha), tau=float(psl.tau), xi=float(psl.xi))
    return params

  def _query(self, state: RunState, phase: int):
    """Peer-study feedback: the next labels by the peers' disagreement on the unprotected candidates."""
    config, pool = self.config, state.pool
    query = self.plan.queries[phase - 1] if self.plan.private_queries else None
    if query is not None:
      state.ledger.check_query(query)
    unlabeled = pool.unlabeled()
    chosen = strategies.select(
        self.strategy, model=peers_lib.StackedPeers(self.member),
        committee={strategies.PEERS: state.train.peers}, x_unlabeled=self.dataset.x_train[unlabeled],
        x_labeled=self.dataset.x_train[pool.labeled], k=config.al.query_sizes[phase - 1],
        task=self.dataset.task, mechanism=None if query is None else query.mechanism,
        rng=state.randomness.rng, key=state.randomness.next_key(), batch_size=config.al.query_batch_size)
    if query is not None:
      state.ledger.record_query(query)
    picked = unlabeled[distributed.from_coordinator(np.asarray(chosen))]
    digest = hashlib.sha256(np.asarray(picked, np.int64).tobytes()).hexdigest()[:12]
    log = f'Query {phase}: labeled {len(picked)} examples ({self.strategy.name}), selection {digest}.'
    return state.replace(pool=pool.label(picked)), protocol.Release(log)

  def summary(self, state: RunState) -> dict:
    history, ledger, plan, psl = state.history, state.ledger, self.plan, self.config.psl
    peer_rows = [row for row in history if 'peer_test_metric' in row]
    return {
        'schema': 'dpal_jax.summary/1',
        'loop': 'psl',
        'dataset': self.config.dataset.name,
        'metric': evaluation.metric_name(self.dataset.task),
        'phases': [{'phase': row['phase'], 'num_labeled': row['num_labeled'],
                    'test_metric': row['test_metric'], 'epsilon_spent_max': row['epsilon_spent_max'],
                    **({'peer_test_metric': row['peer_test_metric']} if 'peer_test_metric' in row else {})}
                   for row in history],
        'final_test_metric': history[-1]['test_metric'],
        'final_peer_test_metric': peer_rows[-1]['peer_test_metric'] if peer_rows else None,
        'epsilon_per_cohort': ledger.epsilon_per_cohort(),
        'epsilon_unlabeled': ledger.epsilon_unlabeled() if plan.private_queries else math.inf,
        'epsilon_protected': math.inf,
        'protected_guarantee': 'none (data isolation only: never labeled or uploaded, but the peers '
                               'learn from them without noise)',
        'target_epsilon': plan.target_epsilon,
        'delta': plan.delta,
        'mode': plan.mode,
        'strategy': self.strategy.name,
        'private_training': bool(self.config.privacy.enabled),
        'private_selection': bool(plan.private_queries),
        'peers': int(psl.peers),
        'clients': int(psl.clients),
        'protected_fraction': float(psl.protected_fraction),
        'num_candidates': int(len(self.split.public_ids)),
        'num_protected': int(len(self.split.protected_ids)),
        'wall_seconds': state.wall,
    }


def _draw(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
  """`size` rows of n: without replacement when there are enough, else with."""
  return rng.choice(n, size=size, replace=n < size)
