#!/usr/bin/env bash
# The one-GPU check (≤ 5 minutes on one GPU): the bench of both bench models (DP, non-private, ratio,
# compile cold/cached, peak memory), the DP step against the host CPU on a small batch, and NFNet-F0 DP
# fine-tune throughput at 192 px (random init). Writes one JSON (schema dpal_jax.gpu_check/1).
#
#   bash scripts/gpu_check.sh [OUT.json]        default: gpu_check.json
#
# Needs a CUDA build of jax in the venv: .venv/bin/pip install 'jax[cuda12]==0.10.2'.
# GPU_CHECK_TINY=1 shrinks every setting so the plumbing runs in seconds on a CPU (tests/test_gpu_check.py).
# PYTHON=... picks another interpreter (default .venv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-.venv/bin/python}" -m dpal_jax.gpu_check --out="${1:-gpu_check.json}"
