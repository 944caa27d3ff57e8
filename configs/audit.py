"""Empirical privacy audit of the offline MLP setting (loop `audit`, `python -m dpal_jax.audit`).

The DP-SGD phase and query mechanism of configs/mlp_pixels.py on the bundled 8×8 digits, audited with
1000 training canaries and 1000 query canaries (one run, 95% confidence). The audit reads every iterate, so it trains
with plain SGD. `add_audit` turns any config into its audit.
"""

from configs import mlp_pixels
from dpal_jax.audit import loop as audit_loop


def add_audit(config, claimed_epsilon: float | None = None):
  """`config` as an audit (loop 'audit', plain SGD; see dpal_jax.audit.loop.audit_config), at ε when given."""
  config = audit_loop.audit_config(config)
  if claimed_epsilon is not None:
    config.privacy.epsilon = claimed_epsilon
  return config


def get_config():
  config = mlp_pixels.get_config()
  config.dataset.name = 'digits'
  config.dataset.test_size = 297
  config.train.epochs = 10
  config.train.batch_size = 64
  config.train.physical_batch_size = 64
  config.train.learning_rate = 0.5
  config.privacy.delta = 1e-4
  config.al.initial_size = 500
  config.al.query_sizes = (100, 100, 100)
  config.al.labeling_budget = 800
  config.al.query_batch_size = 256
  return add_audit(config)
