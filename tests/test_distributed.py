"""Two real JAX processes on localhost (jax.distributed, gloo collectives on CPU, 2 devices each): the
data-parallel DP step equals the single-process step, every process reads only its own rows, and the
released parameters are identical on both hosts."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import jax
import numpy as np
import optax
import pytest

from dpal_jax import distributed
from dpal_jax.dpsgd.trainer import Trainer
from dpal_jax.models.mlp import MLP
from tests.row_source import RecordingRows

ROOT = os.path.dirname(os.path.dirname(__file__))
# (model, input shape, grad_method): the Dense fast path, and per-example gradients with dropout (each
# example's dropout key must follow it to whichever process holds it). The conv path's sharding is
# tested on 8 devices of one process (tests/dpsgd/test_sharding.py); its compile is too slow for here.
CASES = {'ghost': (MLP(num_classes=3, hidden=(16,)), (4, 4, 1), 'ghost'),
         'vmap_dropout': (MLP(num_classes=3, hidden=(16,), dropout=0.3), (4, 4, 1), 'vmap')}
POOL, STEPS = 24, 3

WORKER = textwrap.dedent('''
  import json, sys
  import numpy as np
  from dpal_jax import distributed
  address, process_id, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
  runtime = distributed.initialize(address, 2, process_id)
  assert (runtime.num_processes, runtime.global_devices, runtime.local_devices) == (2, 4, 2), runtime
  from dpal_jax.dpsgd import sharding
  from tests import test_distributed as t
  seed = distributed.shared_seed(None)
  chosen = distributed.from_coordinator(np.array([7, 1, 3]) if process_id == 0 else np.zeros(3, int))
  result = {'seed': str(seed), 'coordinator': distributed.is_coordinator(), 'chosen': chosen.tolist()}
  for name in t.CASES:
    state, reads = t.train(name, seed, sharding.data_mesh())
    distributed.check_identical(state.params, 'parameters')
    params = distributed.host_copy(state.params)
    np.savez(f'{out}/{name}_{process_id}.npz', **t.flat(params))
    result[name] = reads
  distributed.barrier('done')
  print(json.dumps(result))
''')


def train(name: str, seed: int, mesh):
  """STEPS DP logical batches of one case; returns (state, sorted rows of x read by this process)."""
  model, shape, grad_method = CASES[name]
  data = np.random.default_rng(0)
  x = RecordingRows(data.normal(size=(POOL,) + shape).astype(np.float32))
  y = data.integers(0, 3, POOL)
  trainer = Trainer(model, optax.adam(1e-2), task='multiclass', clip_norm=0.5, grad_method=grad_method,
                    physical_batch_size=8, mesh=mesh, pad_multiple=8)  # one chunk shape, on 1 or 4 devices
  state = trainer.init(jax.random.key(0), x.array[:1])
  state, _ = trainer.train_phase(
      state, x, y, sample_rates=np.full(POOL, 0.5), steps=STEPS, noise_multiplier=1.0,
      expected_batch_size=12.0, rng=np.random.default_rng(seed),
      key=jax.random.key(seed % 2**32), progress=False)
  return state, sorted(row for read in x.reads for row in read)


def flat(params) -> dict:
  return {'/'.join(str(k.key) for k in path): np.asarray(v)
          for path, v in jax.tree_util.tree_leaves_with_path(params)}


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('localhost', 0))
    return s.getsockname()[1]


def test_two_processes_release_the_single_process_parameters(tmp_path):
  env = dict(os.environ, JAX_PLATFORMS='cpu', XLA_FLAGS='--xla_force_host_platform_device_count=2',
             PYTHONPATH=ROOT)
  address = f'localhost:{_free_port()}'
  workers = [subprocess.Popen([sys.executable, '-c', WORKER, address, str(i), str(tmp_path)], cwd=ROOT,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
  outputs = []
  for worker in workers:
    try:
      stdout, stderr = worker.communicate(timeout=240)
    except BaseException:  # a hung or failed worker: stop both (a finished one may wait for its peer)
      for w in workers:
        if w.poll() is None:
          w.kill()
      raise
    assert worker.returncode == 0, stderr[-3000:]
    outputs.append(json.loads(stdout.strip().splitlines()[-1]))
  assert [o['coordinator'] for o in outputs] == [True, False]
  assert outputs[0]['seed'] == outputs[1]['seed']  # process 0's entropy, broadcast
  assert outputs[0]['chosen'] == outputs[1]['chosen'] == [7, 1, 3]
  seed = int(outputs[0]['seed'])
  for name in CASES:
    state, reads = train(name, seed, None)
    reference = flat(jax.tree.map(np.asarray, state.params))
    for process in range(2):
      got = dict(np.load(tmp_path / f'{name}_{process}.npz'))
      assert got.keys() == reference.keys()
      for leaf, value in reference.items():
        np.testing.assert_allclose(got[leaf], value, rtol=1e-5, atol=1e-6, err_msg=f'{name} {leaf}')
    # each process read its own half of every chunk: together exactly the single process's rows
    assert sorted(outputs[0][name] + outputs[1][name]) == reads
    assert len(outputs[0][name]) == len(outputs[1][name]) == len(reads) // 2


def test_initialize_without_a_request_stays_single_process(monkeypatch):
  monkeypatch.delenv('JAX_COORDINATOR_ADDRESS', raising=False)
  runtime = distributed.initialize()
  assert (runtime.process_id, runtime.num_processes, runtime.multi_process) == (0, 1, False)
  assert distributed.is_coordinator()
  assert distributed.shared_seed(7) == 7 and distributed.shared_seed(None) != distributed.shared_seed(None)
  distributed.check_identical({'a': np.ones(2)}, 'anything')
  assert distributed.from_coordinator({'i': np.arange(3)})['i'].tolist() == [0, 1, 2]
  distributed.barrier('single')


@pytest.mark.parametrize('leaf', [np.arange(3.0), jax.numpy.arange(3.0)])
def test_host_copy_returns_numpy(leaf):
  out = distributed.host_copy({'w': leaf})
  assert isinstance(out['w'], np.ndarray) and out['w'].tolist() == [0.0, 1.0, 2.0]
