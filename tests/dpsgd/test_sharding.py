"""The data-parallel step (private and not) on 8 CPU devices equals the single-device step (run in a fresh process:
the device count is fixed when JAX starts)."""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent('''
  import jax, numpy as np, optax
  from dpal_jax.dpsgd import sharding
  from dpal_jax.dpsgd.trainer import Trainer
  from dpal_jax.models.cnn import SmallCNN
  from dpal_jax.models.mlp import MLP
  assert jax.device_count() == 8, jax.devices()
  rng = np.random.default_rng(0)
  cases = [(MLP(num_classes=3, hidden=(16,), dropout=0.3), (4, 4, 1), True),
           (SmallCNN(num_classes=3, width=4, features=8), (8, 8, 1), True),
           (SmallCNN(num_classes=3, width=4, features=8), (8, 8, 1), False)]
  for model, shape, private in cases:
    x = rng.normal(size=(16,) + shape).astype(np.float32)
    y = rng.integers(0, 3, 16)
    results = []
    for mesh in (None, sharding.data_mesh()):
      trainer = Trainer(model, optax.adam(1e-2), task='multiclass', clip_norm=0.5,
                        physical_batch_size=16, mesh=mesh)
      state = trainer.init(jax.random.key(0), x)
      state, stats = trainer.train_phase(
          state, x, y, sample_rates=np.ones(16), steps=2, noise_multiplier=1.0,
          expected_batch_size=16.0, rng=np.random.default_rng(1), key=jax.random.key(2),
          private=private, progress=False)
      if mesh is not None:
        assert state.params['head']['kernel'].sharding.is_fully_replicated
      results.append(jax.tree.map(np.asarray, state.params))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), *results)
    print(type(model).__name__, private)
''')


def test_sharded_step_on_8_cpu_devices_equals_the_single_device_step():
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=8', JAX_PLATFORMS='cpu')
  result = subprocess.run([sys.executable, '-c', SCRIPT], env=env, capture_output=True, text=True,
                          timeout=600, cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.split() == ['MLP', 'True', 'SmallCNN', 'True', 'SmallCNN', 'False']
