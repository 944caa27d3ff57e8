"""Small-data medical DP active learning, offline: scikit-learn's breast-cancer data (569 patients, 30
features; a pool of 400, 169 held out), 10 initial labels, 3 per round for 5 rounds, and
ε = 2 for every patient, all-inclusive (training and the private entropy query, δ = 1e-4).

Logistic regression (31 parameters per class, SGD) on features scaled by the dataset's published ranges
(dpal_jax/data/breast_cancer.py: no privacy cost). Campaigns on one pool share a budget with
privacy.ledger_path; al.fallback = 'random' selects at random once the query budget is spent (docs/budgets.md).
configs/oncology_sites.py gives its 3 sites their own budgets.
  python -m dpal_jax.main --config=configs/oncology_breast_cancer.py --workdir=/tmp/onc
"""

from configs import mlp_pixels


def get_config():
  config = mlp_pixels.get_config()
  config.dataset.name = 'breast_cancer'
  config.dataset.test_size = 169
  config.model.name = 'logreg'
  config.train.optimizer = 'sgd'
  config.train.learning_rate = 0.5
  config.train.epochs = 20
  config.train.batch_size = 5
  config.train.physical_batch_size = 16
  config.train.clip_norm = 1.0
  config.train.eval_batch_size = 256
  config.privacy.epsilon = 2.0
  config.privacy.delta = 1e-4
  config.privacy.epsilon_al = 0.5
  config.al.strategy = 'entropy'
  config.al.initial_size = 10
  config.al.query_sizes = (3, 3, 3, 3, 3)
  config.al.labeling_budget = 25
  config.al.query_batch_size = 512
  return config
