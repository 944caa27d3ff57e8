"""`make_plan` gives, field for field, the plans stored in tests/privacy/golden/ (all but `seconds`).

The files are `python -m dpal_jax.plan --config=configs/<config>.py [override] --json` as printed before
the privacy events and mechanisms were reorganised: a refactoring of privacy/ must not move a single
rate, σ, step count or ε. One value changed on purpose since: `epsilon_unlabeled` of a data-dependent
strategy under non-private selection (privacy.epsilon_al = 0) is ∞ (null), no longer 0.0. The `default_*`
files were made on the default config of that time, which is configs/mlp_pixels.py now.
"""

import importlib
import json
import os

import pytest

from dpal_jax.privacy.planner import make_plan

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'golden')

# golden file stem: (config module, {dotted field: value})
CASES = {
    'default': ('mlp_pixels', {}),
    'cifar10_entropy': ('cifar10_entropy', {}),
    'bloodmnist_entropy': ('bloodmnist_entropy', {}),
    'octmnist_entropy': ('octmnist_entropy', {}),
    'chexpert_nfnet_f0': ('chexpert_nfnet_f0', {}),
    'snli_entropy': ('snli_entropy', {}),
    'bench_mlp': ('bench.mlp', {}),
    'bench_resnet9_gn': ('bench.resnet9_gn', {}),
    'default_gaussian': ('mlp_pixels', {'privacy.query_mechanism': 'gaussian'}),
    'default_pld': ('mlp_pixels', {'privacy.accountant': 'pld'}),
    'default_naive': ('mlp_pixels', {'privacy.mode': 'naive'}),
    'default_step_ampl_prob': ('mlp_pixels', {'privacy.mode': 'step_ampl_prob'}),
    'default_step_ampl_prob_noise': ('mlp_pixels', {'privacy.mode': 'step_ampl_prob_noise'}),
    'default_noise_red_prob': ('mlp_pixels', {'privacy.mode': 'noise_red_prob'}),
    'default_disabled': ('mlp_pixels', {'privacy.enabled': False}),
    'default_free_selection': ('mlp_pixels', {'privacy.epsilon_al': 0.0}),
}
SLOW = {'default_pld'}   # the PLD accountant plans in ≈ 30 s


def _plan_dict(module: str, overrides: dict) -> dict:
  config = importlib.import_module(f'configs.{module}').get_config()
  for dotted, value in overrides.items():
    section, name = dotted.split('.')
    setattr(getattr(config, section), name, value)
  out = json.loads(make_plan(config).to_json())
  del out['seconds']
  return out


@pytest.mark.parametrize('stem', [
    pytest.param(stem, marks=pytest.mark.slow if stem in SLOW else ()) for stem in CASES])
def test_plan_equals_the_stored_one(stem):
  with open(os.path.join(GOLDEN, f'{stem}_plan.json'), encoding='utf-8') as f:
    expected = json.load(f)
  del expected['seconds']
  assert _plan_dict(*CASES[stem]) == expected


def test_every_stored_plan_is_checked():
  stems = {name[:-len('_plan.json')] for name in os.listdir(GOLDEN) if name.endswith('_plan.json')}
  assert stems == set(CASES)
