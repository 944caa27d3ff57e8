"""`python -m dpal_jax.pate <command> [--flags]`: the PATE commands.

- `analyze`: the privacy analysis of a votes file (`pate.analyze`).

Each command module has `define_flags()` and `main(argv)`; a user error is one line `error: …`
(`dpal_jax.cli`).
"""

from dpal_jax import cli
from dpal_jax.pate import analyze

COMMANDS = {'analyze': analyze}


def main(argv):
  if len(argv) < 2 or argv[1] not in COMMANDS:
    got = f' (got {argv[1]!r})' if len(argv) > 1 else ''
    cli.fail(f'name a command{got}: python -m dpal_jax.pate {"|".join(COMMANDS)} --help', cli.USAGE_EXIT)
  COMMANDS[argv[1]].main(argv[1:])


if __name__ == '__main__':
  for command in COMMANDS.values():
    command.define_flags()
  cli.run(main)
