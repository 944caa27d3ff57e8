"""A unit's ε from plan.json / ledger.json alone (their documented rules, dp-accounting, no dpal_jax code),
for the tests that recompute ε independently."""

import dp_accounting
from dp_accounting import rdp


def unit_epsilon(data: dict, slot: int, labeled_at: int | None, prior=()) -> float:
  """ε at data['delta'] of the unit in rate slot `slot`, labeled before phase `labeled_at` (None: never),
  in a fresh RdpAccountant (default orders): `prior`, then the queries it was scored in (while still
  unlabeled), then its DP-SGD phases, then the DP fine-tuning passes (every unit pays each)."""
  accountant = rdp.RdpAccountant()
  for event in prior:
    accountant.compose(event)
  for query in data['queries']:
    if labeled_at is None or labeled_at > query['after_phase']:
      accountant.compose(query_event(query))
  for phase in data['phases']:
    compose_phase(accountant, phase, slot)
  for finetune in data.get('finetunes', []):
    accountant.compose(dp_accounting.PoissonSampledDpEvent(
        finetune['sample_rate'], dp_accounting.GaussianDpEvent(finetune['noise_multiplier'])),
                       finetune['steps'])
  return accountant.get_epsilon(data['delta'])


def query_event(query: dict) -> dp_accounting.DpEvent:
  """A query entry {'after_phase', 'mechanism', parameters}: one candidate's event."""
  if query['mechanism'] == 'laplace':
    return dp_accounting.LaplaceDpEvent(1 / query['epsilon'])
  event = dp_accounting.GaussianDpEvent(query['noise_multiplier'])
  if 'sample_rate' in query:
    event = dp_accounting.PoissonSampledDpEvent(query['sample_rate'], event)
  return event


def compose_phase(accountant, phase: dict, slot: int) -> None:
  """Composes into `accountant` what a phase entry costs the unit in rate slot `slot` (nothing when it
  has no slot or rate 0)."""
  if slot < len(phase['sample_rates']) and phase['sample_rates'][slot] > 0:
    accountant.compose(dp_accounting.PoissonSampledDpEvent(
        phase['sample_rates'][slot], dp_accounting.GaussianDpEvent(phase['noise_multiplier'])),
                       phase['steps'])
