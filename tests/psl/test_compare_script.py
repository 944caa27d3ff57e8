"""scripts/psl_compare.py: its ε recomputation agrees with the ledger, its table aggregates over seeds."""

import importlib.util
import math
import os

import numpy as np
import pytest

from dpal_jax.privacy.events import QueryRound
from dpal_jax.privacy.ledger import Ledger
from dpal_jax.privacy.mechanisms.laplace_top_k import LaplaceTopK

_PATH = os.path.join(os.path.dirname(__file__), '..', '..', 'scripts', 'psl_compare.py')
_SPEC = importlib.util.spec_from_file_location('psl_compare', _PATH)
psl_compare = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(psl_compare)


def test_recomputed_epsilons_equal_the_ledgers():
  ledger = Ledger.for_cohorts('rdp', 1e-5, 8.0, num_cohorts=2)
  ledger.record_phase(0, [0.05], 1.5, 40)
  ledger.record_query(QueryRound(after_phase=0, mechanism=LaplaceTopK(0.5)))
  ledger.record_phase(1, [0.05, 0.1], 1.5, 40)
  got = psl_compare.unit_epsilons(ledger.to_dict())
  np.testing.assert_allclose(got, ledger.epsilon_per_unit(), rtol=1e-6)
  assert got[2] == pytest.approx(0.5, rel=1e-2) and got[1] > got[0] > 0   # never labeled: the query only


def test_aggregate_and_table():
  runs = [{'setting': 'eps8', 'method': 'psl', 'seed': s, 'epsilon': 7.9 + s / 100, 'labels': [500, 750],
           'accuracy': [0.5 + s / 10, 0.6]} for s in range(3)]
  table = psl_compare.aggregate(runs)
  row = table[('eps8', 'psl')]
  assert row['mean'] == pytest.approx([0.6, 0.6]) and row['sd'] == pytest.approx([0.1, 0.0])
  assert row['epsilon'] == pytest.approx(7.92) and row['seeds'] == 3
  text = psl_compare.markdown(table | {('nonprivate', 'psl'): dict(row, epsilon=math.inf)})
  assert '| eps8 | psl | 7.920 | 3 | 0.600 ± 0.100 | 0.600 ± 0.000 |' in text and '| ∞ |' in text
  assert psl_compare.run_args('psl', 'nonprivate', 1)[-1] == '--config.seed=1'
  assert '--config.al.strategy=peer_study' in psl_compare.run_args('psl', 'nonprivate', 1)
