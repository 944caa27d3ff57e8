"""`python -m dpal_jax.ledger show PATH [--json]` and `python -m dpal_jax.ledger check PATH`.

A pool's persistent ledger (`privacy.ledger_path`, `privacy.ledger_store`; docs/budgets.md), read only.
- `show`: the pool's budget; per class of pool examples (the examples that went through the same units:
  a cohort of a campaign, its never-labeled, a group or person unit, or a campaign's open reservation)
  their number, ε spent and ε remaining; the campaigns in order (open / closed / stopped early, workdir,
  candidates, units with their ε). `--json` prints the same as one JSON object.
- `check`: recomputes every ε from the raw events with a fresh dp-accounting accountant (not the
  project's cached one): each unit's recorded ε (prior ∘ its events), each closed unit against its
  campaign's reservation, each planned unit of a reservation, and every class against the budget (a
  class that went through an open reservation is bounded by that reservation's planned units instead:
  it is counted with all of them composed, more than it can have spent).
Exit codes: 0 all is well; 1 `check` found a mismatch or an overspend, or the ledger is damaged or
unreadable (one line naming the file); 2 bad usage or no ledger at PATH.
"""

import json
import math
import os
import sys

import dp_accounting
from absl import flags
from absl import logging as absl_logging
from dp_accounting import pld
from dp_accounting import rdp

from dpal_jax import cli
from dpal_jax.errors import ConfigError
from dpal_jax.privacy import ledger_store

_JSON = None   # --json, defined only when run as a command (`define_flags`): importing defines no flag
TOLERANCE = 1e-6   # relative: recomputed vs recorded ε, and slack above the budget (as the run's ledger)
PLD_DISCRETIZATION = 1e-3   # the runs' PLD discretisation (privacy.accounting)


def fresh_epsilon(events: list[dict], delta: float, accountant: str) -> float:
  """ε at δ of the dp events (as dicts) composed in a fresh dp-accounting accountant."""
  spent = [e for e in ledger_store.events_from_json(events)
           if not isinstance(e, dp_accounting.NoOpDpEvent)]
  if not spent:
    return 0.0
  absl_logging.set_verbosity(absl_logging.ERROR)   # dp-accounting's per-order warnings (harmless)
  fresh = (rdp.RdpAccountant() if accountant == 'rdp'
           else pld.PLDAccountant(value_discretization_interval=PLD_DISCRETIZATION))
  fresh.compose(dp_accounting.ComposedDpEvent(spent))
  return float(fresh.get_epsilon(delta))


def _load(path: str) -> tuple[list[dict], dict]:
  if not os.path.isdir(os.path.join(path, ledger_store.RECORDS)):
    raise ConfigError(f'{path} holds no pool ledger (no {ledger_store.RECORDS}/ folder); name the folder '
                      'given as privacy.ledger_path')
  records = ledger_store.Store(path).records()
  budget = ledger_store.budget(records)
  if budget is None:
    raise ConfigError(f'{path} holds no campaign yet')
  return records, budget


def report(path: str) -> dict:
  """What `show` prints, as plain data."""
  records, budget = _load(path)
  target, delta, accountant = budget['target_epsilon'], budget['delta'], budget['accountant']
  still_open = {c.name for c in ledger_store.campaigns(records) if not c.closed}
  cls, found = ledger_store.histories(records, budget['pool_size'])
  classes = []
  for c, entry in enumerate(found):
    count = int((cls == c).sum())
    if not count:
      continue
    spent = fresh_epsilon(entry['events'], delta, accountant)
    classes.append({'path': [f'{campaign}: {unit}' for campaign, unit in entry['path']] or ['untouched'],
                    'examples': count, 'epsilon': spent, 'remaining': max(0.0, target - spent),
                    'reserved': any(name in still_open for name, _ in entry['path'])})
  campaigns = []
  for campaign in ledger_store.campaigns(records):
    latest = campaign.latest or {}
    stopped = latest.get('stopped')
    campaigns.append({
        'campaign': campaign.name, 'workdir': campaign.reserve['workdir'],
        'status': ('stopped early' if stopped else 'closed') if campaign.closed else 'open (reserved)',
        'stopped': stopped, 'candidates': len(campaign.reserve['candidates']),
        'last_stage': latest.get('stage'),
        'units': [{'name': u['name'], 'members': (None if u['members'] is None else len(u['members'])),
                   'epsilon': u['epsilon']} for u in latest.get('units', [])]})
  return {'path': os.path.abspath(path), 'budget': budget, 'classes': classes, 'campaigns': campaigns}


def problems(path: str) -> list[str]:
  """Every mismatch and overspend `check` finds (empty: the ledger is consistent and within budget)."""
  records, budget = _load(path)
  target, delta, accountant = budget['target_epsilon'], budget['delta'], budget['accountant']
  out = []
  for record in records:
    if record['kind'] == 'reserve':
      for field in ('accountant', 'delta', 'target_epsilon', 'pool', 'pool_size'):
        if record[field] != budget[field]:
          out.append(f'record {record["seq"]}: {field} {record[field]!r} differs from the pool\'s '
                     f'{budget[field]!r}')
  campaigns = ledger_store.campaigns(records)
  for campaign in campaigns:
    prior = campaign.reserve['prior']
    worst = [e for unit in campaign.reserve['planned'] for e in unit]
    reserved = fresh_epsilon(prior + worst, delta, accountant)
    for index, planned in enumerate(campaign.reserve['planned']):
      planned_epsilon = fresh_epsilon(prior + planned, delta, accountant)
      if planned_epsilon > target * (1 + TOLERANCE):
        out.append(f'campaign {campaign.name} planned unit {index} to ε {planned_epsilon:.6f} > the budget '
                   f'{target}')
    for record in [r for r in records if r['campaign'] == campaign.name and r['kind'] != 'reserve']:
      for unit in record['units']:
        again = fresh_epsilon(prior + unit['events'], delta, accountant)
        where = f'campaign {campaign.name}, record {record["seq"]}, {unit["name"]}'
        if not math.isclose(again, unit['epsilon'], rel_tol=TOLERANCE, abs_tol=1e-9):
          out.append(f'{where}: recorded ε {unit["epsilon"]:.6f}, recomputed {again:.6f}')
        if again > reserved * (1 + TOLERANCE) + 1e-9:
          out.append(f'{where}: spent ε {again:.6f} beyond its reservation\'s worst case {reserved:.6f}')
  # A class that passed through an open reservation is counted with its composed worst case, more than it
  # can have spent; its bound is the reservation's planned units, each checked against the budget above.
  still_open = {c.name for c in campaigns if not c.closed}
  cls, found = ledger_store.histories(records, budget['pool_size'])
  for c, entry in enumerate(found):
    count = int((cls == c).sum())
    if not count or any(name in still_open for name, _ in entry['path']):
      continue
    spent = fresh_epsilon(entry['events'], delta, accountant)
    if spent > target * (1 + TOLERANCE):
      path_text = ' → '.join(f'{a}: {b}' for a, b in entry['path'])
      out.append(f'overspend: {count} examples ({path_text}) at ε {spent:.6f} > the budget {target}')
  return out


def _eps(value) -> str:
  return 'null' if value is None else f'{value:.4f}'


def format_report(data: dict) -> str:
  b = data['budget']
  lines = [f'pool ledger {data["path"]}: budget ε {b["target_epsilon"]} at δ {b["delta"]:g} '
           f'({b["accountant"]}), pool of {b["pool_size"]} examples', '',
           f'{"examples":>8} {"ε spent":>9} {"ε left":>9}  units they went through']
  for c in sorted(data['classes'], key=lambda c: -c['epsilon']):
    lines.append(f'{c["examples"]:>8} {c["epsilon"]:>9.4f} {c["remaining"]:>9.4f}  '
                 + ' → '.join(c['path']) + (' (open: counted at its worst case)' if c['reserved'] else ''))
  lines += ['', 'campaigns (in the order they reserved):']
  for c in data['campaigns']:
    lines.append(f'- {c["campaign"]} [{c["status"]}] {c["workdir"]}: {c["candidates"]} candidates, '
                 f'last stage {c["last_stage"]}')
    if c['stopped']:
      lines.append(f'    stopped before {c["stopped"]["at"]}: {c["stopped"]["reason"]}')
    for u in c['units']:
      members = 'the rest' if u['members'] is None else f'{u["members"]} examples'
      lines.append(f'    {u["name"]} ({members}): ε {_eps(u["epsilon"])}')
  return '\n'.join(lines)


def define_flags() -> None:
  """Defines --json (only for the command, so that importing this module next to another command's
  module, as tests do, defines no flag twice)."""
  global _JSON
  _JSON = flags.DEFINE_bool('json', False, 'show: print one JSON object instead of tables.')


def main(argv: list[str]) -> None:
  if len(argv) != 3 or argv[1] not in ('show', 'check'):
    raise ConfigError('usage: python -m dpal_jax.ledger show PATH [--json] | check PATH')
  command, path = argv[1], argv[2]
  if command == 'show':
    data = report(path)
    print(json.dumps(data, indent=1) if _JSON is not None and _JSON.value else format_report(data))
    return
  found = problems(path)
  for line in found:
    print(line)
  if found:
    print(f'{len(found)} problem(s) in {path}', file=sys.stderr)
    sys.exit(cli.FAILURE_EXIT)
  print(f'{path}: every ε recomputed with a fresh dp-accounting accountant matches, none above the '
        'budget')


if __name__ == '__main__':
  define_flags()
  cli.run(main)

