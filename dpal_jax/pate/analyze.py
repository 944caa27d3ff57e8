"""`python -m dpal_jax.pate analyze`: the PATE privacy analysis of a votes file (docs/pate_analysis.md).

  python -m dpal_jax.pate analyze --votes=VOTES.npy --aggregator=gnmax|confident_gnmax --sigma2=…
      [--threshold=… --sigma1=…] --delta=… [--orders=a,b,c,…] [--smooth-sensitivity [--beta=…]] [--json]

Prints, under the expected-answered accounting of the 2018 analysis scripts (`privacy.pate_rdp.analyze`),
the expected number of answers, the data-independent and the data-dependent ε with their optimal
orders and, with --smooth-sensitivity, the GNSS parameters (β, E[SS_β], σ_ss) and the ε of releasing the
data-dependent bound. --json prints the dict of `pate_rdp.analyze` as JSON. A bad flag or votes file is
one line `error: …` (exit 2). Every number is computed from the votes without noise: a report for the
owner of the votes, not a release.
"""

import json

import numpy as np
from absl import flags

from dpal_jax import validate
from dpal_jax.errors import ConfigError
from dpal_jax.pate import votes as votes_lib
from dpal_jax.privacy import pate_rdp

AGGREGATORS = ('gnmax', 'confident_gnmax')


def define_flags(flag_values=flags.FLAGS) -> None:
  """Defines this command's flags (called by the dispatcher only, so that importing defines nothing)."""
  flags.DEFINE_string('votes', None, 'An .npy int array [queries, classes] of vote counts.',
                      flag_values=flag_values)
  flags.DEFINE_string('aggregator', None, f'One of {", ".join(AGGREGATORS)}.', flag_values=flag_values)
  flags.DEFINE_float('sigma2', None, 'The GNMax noise σ₂.', flag_values=flag_values)
  flags.DEFINE_float('threshold', None, 'The threshold T (confident_gnmax).', flag_values=flag_values)
  flags.DEFINE_float('sigma1', None, 'The threshold noise σ₁ (confident_gnmax).', flag_values=flag_values)
  flags.DEFINE_float('delta', None, 'The target δ.', flag_values=flag_values)
  flags.DEFINE_list('orders', None, 'RDP orders > 1 (default: the 2018 scripts\' grid).',
                    flag_values=flag_values)
  flags.DEFINE_bool('smooth-sensitivity', False, 'Also the GNSS release of the data-dependent bound.',
                    flag_values=flag_values)
  flags.DEFINE_float('beta', None, 'A fixed smoothness β (default: the scripts\' grid search).',
                     flag_values=flag_values)
  flags.DEFINE_bool('json', False, 'Print JSON.', flag_values=flag_values)


def run(votes_path: str, *, aggregator, sigma2, delta, threshold=None, sigma1=None, orders=None,
        smooth_sensitivity: bool = False, beta=None) -> dict:
  """Checks every argument (ConfigError naming the flag and the fix) and returns `pate_rdp.analyze`."""
  if votes_path is None:
    raise ConfigError('--votes is required: the .npy file of vote counts [queries, classes]')
  validate.choice('--aggregator', aggregator, AGGREGATORS)
  for name, value in (('--sigma2', sigma2), ('--delta', delta)):
    if value is None:
      raise ConfigError(f'{name} is required, e.g. --sigma2=40 --delta=1e-5')
  validate.number('--sigma2', sigma2, lo=0, lo_open=True)
  validate.number('--delta', delta, lo=0, hi=1, lo_open=True, hi_open=True, hint='e.g. 1e-5')
  if aggregator == 'confident_gnmax':
    if threshold is None or sigma1 is None:
      raise ConfigError('--aggregator=confident_gnmax needs --threshold and --sigma1, e.g. --threshold=200 '
                        '--sigma1=150')
    validate.number('--threshold', threshold)
    validate.number('--sigma1', sigma1, lo=0, lo_open=True)
  elif threshold is not None or sigma1 is not None:
    raise ConfigError('--aggregator=gnmax runs no threshold test; leave out --threshold and --sigma1 '
                      '(or use --aggregator=confident_gnmax)')
  if orders is not None:
    try:
      orders = np.array([float(o) for o in orders])
    except ValueError:
      raise ConfigError(f'--orders ({",".join(orders)}) must be numbers > 1, e.g. '
                        '--orders=2,4,8,16') from None
    for order in orders:
      validate.number('--orders', float(order), lo=1, lo_open=True, hint='RDP orders are > 1')
  if beta is not None:
    if not smooth_sensitivity:
      raise ConfigError('--beta applies only with --smooth-sensitivity')
    validate.number('--beta', beta, lo=0, lo_open=True, hi=0.5, hi_open=True)
  votes = votes_lib.load(votes_path)
  try:
    return pate_rdp.analyze(votes, aggregator=aggregator, sigma2=sigma2, threshold=threshold,
                            sigma1=sigma1, delta=delta, orders=orders,
                            smooth_sensitivity=smooth_sensitivity, beta=beta)
  except ValueError as e:   # a fixed β too large for the optimal order
    raise ConfigError(f'--beta ({beta}): {e}; choose a smaller β') from None


def format_text(result: dict) -> str:
  """The analysis as readable lines."""
  lines = [f'{result["aggregator"]}: {result["queries"]} queries, {result["teachers"]} teachers, '
           f'{result["classes"]} classes, δ = {result["delta"]:g}',
           f'expected answered          {result["expected_answered"]:.2f}',
           f'ε data-independent         {result["epsilon_data_independent"]:.4f} '
           f'(order {result["order_data_independent"]:g})',
           f'ε data-dependent           {result["epsilon_data_dependent"]:.4f} '
           f'(order {result["order_data_dependent"]:g})']
  release = result.get('smooth_sensitivity')
  if release is not None:
    if not release['conditions_hold']:
      lines.append(f'smooth sensitivity: conditions C5/C6 fail at order {release["order"]:g}; '
                   'the GNSS analysis does not apply')
    else:
      sigma_ss = 'none needed' if release['sigma_ss'] is None else f'{release["sigma_ss"]:.3f}'
      lines += [f'GNSS at order {release["order"]:g}: β = {release["beta"]:.4f}, '
                f'E[SS_β] = {release["expected_smooth_sensitivity"]:.4g}, σ_ss = {sigma_ss}',
                f'ε with smooth sensitivity  {release["epsilon_with_smooth_sensitivity"]:.4f} '
                f'(± {release["noise_std"]:.3f} noise std)']
  lines.append('(computed from the votes without noise: a report, not a release)')
  return '\n'.join(lines)


def main(argv) -> None:
  """The command: flags → `run` → JSON or text on stdout."""
  if len(argv) > 1:
    raise ConfigError(f'unexpected arguments {argv[1:]}; every option is a --flag')
  values = flags.FLAGS
  result = run(values.votes, aggregator=values.aggregator, sigma2=values.sigma2, delta=values.delta,
               threshold=values.threshold, sigma1=values.sigma1, orders=values.orders,
               smooth_sensitivity=values['smooth-sensitivity'].value, beta=values.beta)
  print(json.dumps(result, indent=1, allow_nan=False) if values.json else format_text(result))
