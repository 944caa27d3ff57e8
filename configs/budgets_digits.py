"""Per-group budgets and person-level DP on the bundled 8×8 digits (offline, about a minute on a CPU).

The pool (1,500 images) is dealt into 3 public sites and into persons of 1–3 records (`dataset.sites`,
`dataset.max_records_per_person`: simulated, independent of every image and label; a real pool names
its own). The person is the privacy unit: the pool labels whole persons (300 initially, 100 per query),
DP-SGD samples persons and clips each person's summed gradient, and a query scores a person by the mean
entropy of its records. Every person of site_0 ends at ε ≤ 2, of site_1 at ε ≤ 3, of site_2 at ε ≤ 4
(a person with records in two sites at the tighter one), training and queries included (docs/budgets.md).
  python -m dpal_jax.plan --config=configs/budgets_digits.py
  python -m dpal_jax.main --config=configs/budgets_digits.py --workdir=/tmp/budgets
"""

from configs import mlp_pixels


def get_config():
  config = mlp_pixels.get_config()
  config.dataset.name = 'digits'
  config.dataset.test_size = 297
  config.dataset.sites = 3
  config.dataset.max_records_per_person = 3
  config.model.name = 'mlp'
  config.train.epochs = 10
  config.train.batch_size = 64
  config.train.physical_batch_size = 64
  config.train.learning_rate = 3e-3
  config.privacy.epsilon = 4.0
  config.privacy.delta = 1e-4
  config.privacy.epsilon_al = 0.5
  config.privacy.group_epsilon = {'site_0': 2.0, 'site_1': 3.0}
  config.al.initial_size = 300
  config.al.query_sizes = (100, 100)
  config.al.labeling_budget = 500
  config.al.query_batch_size = 256
  return config
