"""`audit.enabled` on an ordinary config: the audit runs after the run in WORKDIR/audit, with its own
ledger; the run's own files are those of a run without it, and summary.json links audit.json."""

import json
import os

from dpal_jax import loops
from tests.configs import tiny


def test_audit_enabled_runs_beside_the_run_without_touching_its_ledger(tmp_path):
  plain = tiny.get_config()
  audited = tiny.get_config()
  audited.audit.enabled = True
  audited.audit.canaries = audited.audit.query_canaries = 200
  audited.audit.guesses = 20
  loops.run(plain, str(tmp_path / 'plain'))
  summary = loops.run(audited, str(tmp_path / 'audited'))
  assert summary['audit'] == os.path.join('audit', 'audit.json')
  with open(tmp_path / 'audited' / 'summary.json') as f:
    assert json.load(f)['audit'] == summary['audit']
  with open(tmp_path / 'audited' / summary['audit']) as f:
    audit = json.load(f)
  assert audit['schema'] == 'dpal_jax.audit/1'
  assert audit['training']['lower_bound'] <= audit['training']['claimed_epsilon']
  for name in ('ledger.json', 'metrics.jsonl'):
    assert (tmp_path / 'audited' / name).read_text() == (tmp_path / 'plain' / name).read_text()
  assert (tmp_path / 'audited' / 'audit' / 'ledger.json').exists()
