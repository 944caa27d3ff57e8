"""Inspect a pretrained weights file: `python -m dpal_jax.weights inspect PATH [--json]`.

Prints {"format", "variant", "leaves", "params"} after validating every leaf's name and shape against
the model (the file is read with a restricted unpickler, so nothing in it is executed). Exits with
status 1 and one line on stderr when the file is not a valid checkpoint (`dpal_jax.cli`).
"""

import json

from absl import app, flags

from dpal_jax import cli

_JSON = flags.DEFINE_bool('json', False, 'Print the summary as one JSON object.')


def main(argv: list[str]) -> None:
  if len(argv) != 3 or argv[1] != 'inspect':
    raise app.UsageError('usage: python -m dpal_jax.weights inspect PATH [--json]')
  from dpal_jax.models import nfnet_weights  # after flag parsing: importing jax is slow
  summary = nfnet_weights.inspect(argv[2])
  if _JSON.value:
    print(json.dumps(summary))
  else:
    print(f'{argv[2]}: NFNet-{summary["variant"]} ({summary["format"]}), '
          f'{summary["leaves"]} leaves, {summary["params"]:,} parameters')


if __name__ == '__main__':
  cli.run(main)
