"""The audit loop: an honest engine stays below its claimed ε, each broken engine is caught, and
`python -m dpal_jax.audit` writes audit.json in its own workdir."""

import json
import os
import subprocess
import sys

import pytest

from dpal_jax import config_schema
from dpal_jax.audit import loop as audit_loop
from dpal_jax.errors import ConfigError
from dpal_jax.loops import protocol
from tests.audit import sabotage
from tests.configs import tiny_audit

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _audit(tmp_path, broken=None, seed=0, mechanism='laplace', **fields):
  config = tiny_audit.get_config()
  config.seed = seed
  config.privacy.query_mechanism = mechanism
  for name, value in fields.items():
    config.audit[name] = value
  config_schema.check(config)
  loop = audit_loop.Loop(config)
  if broken is not None:
    broken(loop)
  return protocol.execute(loop, config, str(tmp_path / f'audit_{seed}'))


def test_honest_engine_stays_below_the_claim(tmp_path):
  audit = _audit(tmp_path)
  assert audit['schema'] == 'dpal_jax.audit/1'
  for kind in ('training', 'query'):
    row = audit[kind]
    assert row['lower_bound'] <= row['claimed_epsilon'] and not row['violation'], row
    assert row['confidence'] == 0.95 and row['canaries'] == 1000 and 0 < row['correct'] <= row['guesses']
  assert audit['training']['claimed_epsilon'] == pytest.approx(1.0, abs=1e-3)
  saved = json.loads((tmp_path / 'audit_0' / 'audit.json').read_text())
  assert saved['training'] == audit['training'] and saved['setting']['canary_kind'] == 'gradient'


@pytest.mark.parametrize('broken', [sabotage.clipping_off, sabotage.noise_scaled,
                                    sabotage.rates_misreported], ids=lambda f: f.__name__)
def test_each_broken_training_engine_is_caught(tmp_path, broken):
  row = _audit(tmp_path, broken, query_canaries=0)['training']
  assert row['lower_bound'] > row['claimed_epsilon'] and row['violation'], row


@pytest.mark.parametrize('mechanism', ['laplace', 'gaussian'])
def test_query_without_noise_is_caught(tmp_path, mechanism):
  audit = _audit(tmp_path, sabotage.query_noise_off, mechanism=mechanism, canaries=100, guesses=10)
  row = audit['query']
  assert row['lower_bound'] > row['claimed_epsilon'] and row['violation'], row
  assert row['correct'] == row['guesses']          # every selected canary was a planted one
  assert not audit['training']['violation']


def test_honest_gaussian_query_stays_below_the_claim(tmp_path):
  row = _audit(tmp_path, mechanism='gaussian', canaries=100, guesses=10)['query']
  assert row['lower_bound'] <= row['claimed_epsilon'] and row['guesses'] > 0, row


def test_input_canaries_run_and_stay_below_the_claim(tmp_path):
  row = _audit(tmp_path, canary_kind='input', canaries=128, guesses=20, query_canaries=0)['training']
  assert row['canaries'] == 128 and row['guesses'] == 20
  assert row['lower_bound'] <= row['claimed_epsilon'], row


@pytest.mark.slow
@pytest.mark.parametrize('seed', range(1, 6))
def test_honest_engine_stays_below_the_claim_for_every_seed(tmp_path, seed):
  audit = _audit(tmp_path, seed=seed)
  for kind in ('training', 'query'):
    assert audit[kind]['lower_bound'] <= audit[kind]['claimed_epsilon'], audit[kind]


def test_config_errors_name_the_field():
  config = tiny_audit.get_config()
  config.train.optimizer = 'adam'
  with pytest.raises(ConfigError, match="train.optimizer.*set train.optimizer='sgd'"):
    audit_loop.Loop(config)
  config = tiny_audit.get_config()
  config.audit.guesses = 2000
  with pytest.raises(ConfigError, match='audit.guesses'):
    audit_loop.Loop(config)
  del config['audit']
  with pytest.raises(ConfigError, match='audit: the config has no audit section'):
    audit_loop.Loop(config)
  config = tiny_audit.get_config()
  config.privacy.epsilon_al_split = 'auto'
  with pytest.raises(ConfigError, match="privacy.epsilon_al_split 'auto'.*privacy.epsilon_al_split='fixed'"):
    audit_loop.Loop(config)
  config = tiny_audit.get_config()
  config.audit.canary_kind = 'pixel'
  with pytest.raises(ConfigError, match='audit.canary_kind'):
    config_schema.check(config)


def test_command_line_writes_audit_json_in_its_own_workdir(tmp_path):
  workdir = tmp_path / 'run'
  done = subprocess.run(
      [sys.executable, '-m', 'dpal_jax.audit', '--config=tests/configs/tiny_audit.py',
       f'--workdir={workdir}', '--config.audit.query_canaries=0'],
      cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
  assert done.returncode == 0, done.stderr[-2000:]
  assert 'training: claimed ε 1.000, audited lower bound' in done.stdout
  assert json.loads((workdir / 'audit.json').read_text())['query'] is None
  assert json.loads((workdir / 'ledger.json').read_text())
  bad = subprocess.run(
      [sys.executable, '-m', 'dpal_jax.audit', '--config=tests/configs/tiny_audit.py',
       f'--workdir={tmp_path / "bad"}', '--config.train.optimizer=adam'],
      cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
  assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith('error: train.optimizer')


def test_a_finished_audit_resumes_to_the_same_result(tmp_path):
  first = _audit(tmp_path, query_canaries=0)
  again = _audit(tmp_path, query_canaries=0)      # same workdir: restored, nothing recomputed
  assert again['training'] == first['training']
  ledger = json.loads((tmp_path / 'audit_0' / 'ledger.json').read_text())
  assert len(ledger['phases']) == 1        # the one training phase, paid once
