"""`python -m dpal_jax.plan --config=configs/<x>.py [--config.<field>=<value> …] [--json]`

Prints the privacy plan of a config (no training, and no data unless privacy.group_epsilon needs the
pool's groups): a readable table, or with --json exactly plan.json. An invalid or infeasible config
ends with one line on stderr and exit code 2 (`dpal_jax.cli`),
nothing written.
"""

import math

from absl import app
from absl import flags
from ml_collections import config_flags

from dpal_jax import cli
from dpal_jax import config_schema
from dpal_jax.loops import common
from dpal_jax.loops import units
from dpal_jax.privacy.plan import Plan
from dpal_jax.privacy.planner import make_plan

_CONFIG = _JSON = None   # defined only when run as a command (`define_flags`): importing defines no flag


def define_flags() -> None:
  """Defines --config and --json (only for the command, so that importing `format_plan` next to another
  command's module, as tests do, defines no flag twice)."""
  global _CONFIG, _JSON
  _CONFIG = config_flags.DEFINE_config_file('config', None, 'Experiment config file.', lock_config=True)
  _JSON = flags.DEFINE_bool('json', False, 'Print plan.json instead of a table.')


_SYMBOLS = {'epsilon': 'ε', 'noise_multiplier': 'σ', 'sample_rate': 'rate'}   # mechanism parameters


def _eps(value: float) -> str:
  return 'inf' if math.isinf(value) else f'{value:.3f}'


def format_plan(plan: Plan) -> str:
  """The plan as a table: phases, queries, ε per cohort (true and the original's additive figure)."""
  lines = [f'mode {plan.mode}, accountant {plan.accountant}, target ε {_eps(plan.target_epsilon)}, '
           f'δ {plan.delta:g}, ε_AL {_eps(plan.epsilon_al)}, expected batch {plan.expected_batch_size}',
           f'cohort sizes {list(plan.cohort_sizes)}', '',
           f'{"phase":>5} {"steps":>6} {"sigma":>8} {"E[batch]":>9}  rate per cohort 0..k']
  for p in plan.phases:
    rates = ' '.join(f'{q:.4f}' for q in p.sample_rates)
    lines.append(f'{p.phase:>5} {p.steps:>6} {p.noise_multiplier:>8.4f} '
                 f'{plan.expected_batch(p.phase):>9.1f}  {rates}')
  lines.append('')
  if plan.queries:
    for q in plan.queries:
      params = ', '.join(f'{_SYMBOLS.get(k, k)} {v:.4g}' for k, v in q.mechanism.params().items())
      lines.append(f'query after phase {q.after_phase}: {q.mechanism.name} ({params}) per candidate')
  elif not plan.privacy_enabled:
    lines.append('privacy disabled: no noise, no guarantee')
  else:
    lines.append('queries: not private (random selection, or privacy.epsilon_al 0 / inf: '
                 'the selection itself is not protected)')
  for f in plan.finetunes:
    lines.append(f'fine-tuning after phase {f.after_phase}: {f.steps} steps, sigma {f.noise_multiplier:.4f}, '
                 f'rate {f.sample_rate:.4g} for every pool example')
  if plan.epsilon_al_choice:
    lines += ['', *_format_choice(plan.epsilon_al_choice)]
  lines += ['', f'{"cohort":>6} {"size":>7} {"eps (composed)":>15} {"eps (additive)":>15}']
  for c, size in enumerate(plan.cohort_sizes):
    lines.append(f'{c:>6} {size:>7} {_eps(plan.epsilon_per_cohort[c]):>15} '
                 f'{_eps(plan.epsilon_per_cohort_additive[c]):>15}')
  lines.append(f'{"never labeled":>14} {_eps(plan.epsilon_unlabeled):>15}')
  if plan.group_targets:
    lines += ['', f'{"group":>10} {"target":>8} {"eps (composed)":>15}']
    lines += [f'{g:>10} {t:>8.3f} {_eps(plan.epsilon_per_group[g]):>15}'
              for g, t in plan.group_targets.items()]
  if plan.privacy_enabled and plan.exceeds_target():
    lines.append(f'note: some cohorts end above the target ε {plan.target_epsilon} '
                 f'(mode {plan.mode}); privacy.mode = cohort_exact keeps every cohort at the target')
  lines.append(f'planned in {plan.seconds:.2f} s')
  return '\n'.join(lines)


def _format_choice(choice: dict) -> list[str]:
  """privacy.epsilon_al_split = 'auto': the query budgets compared and the one chosen, with why."""
  lines = [f'epsilon_al_split auto: chose ε_AL {choice["chosen"]:g} of at most {choice["max_epsilon_al"]:g} '
           f'by {choice["rule"]}',
           f'  (labels worth W assumes selection gain {choice["selection_gain"]:g} and k/N '
           f'{choice["query_fraction"]:g}; public quantities only)',
           f'{"ε_AL":>8} {"steps":>6} {"sigma":>8} {"W":>7} {"proxy":>9}']
  for row in choice['candidates']:
    mark = '  <- chosen' if row['epsilon_al'] == choice['chosen'] else ''
    lines.append(f'{row["epsilon_al"]:>8.3g} {row["steps"]:>6} {row["sigma"]:>8.4f} {row["worth"]:>7.4f} '
                 f'{row["proxy"]:>9.2f}{mark}')
  return lines


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if _CONFIG.value is None:
    cli.fail('--config is required, e.g. --config=configs/default.py', cli.USAGE_EXIT)
  config_schema.check(_CONFIG.value)
  plan = _plan(_CONFIG.value)
  print(plan.to_json(indent=1) if _JSON.value else format_plan(plan))


def _plan(config) -> Plan:
  """The plan of `config`; per-group budgets read the pool for its groups and their shares, DP fine-tuning
  for its size."""
  dp_finetuning = config.privacy.enabled and config.train.get('finetune_confident', False)
  if not (config.privacy.get('group_epsilon') or dp_finetuning):
    return make_plan(config)
  pool = units.PoolUnits(config, common.load_dataset(config))
  return make_plan(config, pool.pool_size, pool.groups)


if __name__ == '__main__':
  define_flags()
  cli.run(main)
