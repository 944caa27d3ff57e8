"""The oncology config with its 3 sites as groups with their own budgets (docs/budgets.md): a public,
seeded site of each of the 400 pool patients (`dataset.sites = 3`: site_0, site_1, site_2), and ε = 1, 1.5
and 2 per site, all-inclusive (each cohort × site unit gets its own Poisson rate, `cohort_exact`).
A pool ledger across campaigns (privacy.ledger_path) is refused together with per-group budgets for now.
  python -m dpal_jax.main --config=configs/oncology_sites.py --workdir=/tmp/onc_sites
"""

from configs import oncology_breast_cancer


def get_config():
  config = oncology_breast_cancer.get_config()
  config.dataset.sites = 3
  config.privacy.group_epsilon = {'site_0': 1.0, 'site_1': 1.5, 'site_2': 2.0}
  return config
