#!/usr/bin/env bash
# Set-up and the demo: DP active learning on the embedded mnist5k dataset (configs/default.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m dpal_jax.main --config=configs/default.py --workdir="${WORKDIR:-runs/default}" "$@"
