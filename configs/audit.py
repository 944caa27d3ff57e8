"""Empirical privacy audit of the offline default (loop `audit`, `python -m dpal_jax.audit`).

The default's DP-SGD phase and query mechanism on the bundled 8×8 digits, audited with 1000 training
canaries and 1000 query canaries (one run, 95% confidence). The audit reads every iterate, so it trains
with plain SGD. `add_audit` turns any config into its audit.
"""

import ml_collections

from configs import default


def add_audit(config, claimed_epsilon: float | None = None):
  """`config` as an audit: loop 'audit', plain SGD, the audit's own fields (and ε, when given)."""
  config.loop = 'audit'
  config.train.optimizer = 'sgd'
  config.audit = ml_collections.ConfigDict()
  config.audit.canaries = 1000          # m training canaries, each included by a fair coin
  config.audit.canary_kind = 'gradient' # 'gradient' (Dirac, white-box) | 'input' (input space)
  config.audit.guesses = 100            # "included" guessed for the 100 highest scores
  config.audit.query_canaries = 1000    # planted candidates of one query round (0: no query audit)
  config.audit.significance = 0.05      # the bound holds with probability ≥ 95%
  if claimed_epsilon is not None:
    config.privacy.epsilon = claimed_epsilon
  return config


def get_config():
  config = default.get_config()
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
