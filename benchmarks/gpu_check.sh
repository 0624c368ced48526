#!/usr/bin/env bash
# Every GPU measurement as one command (see benchmarks/gpu_check.py), from the repository root, no network needed:
#   bash benchmarks/gpu_check.sh WHEELS_DIR [gpu_check.py options]
#   bash benchmarks/gpu_check.sh .whl --allow-missing causal-conv1d,flash-attn --copy-to "$OUT"
# WHEELS_DIR comes from benchmarks/gpu_wheels.sh (pass an empty string if everything is installed already); the
# command builds nothing itself. --copy-to gets the report, the log and pretrain's metrics.json after every
# section. The whole check keeps to gpu_check.py's --budget (default 450 s) plus the install (seconds).
set -euo pipefail
cd "$(dirname "$0")/.."
wheels=${1-}
shift || true
if [ -n "$wheels" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/hnet-site \
    "$wheels"/*.whl
  export PYTHONPATH="/tmp/hnet-site${PYTHONPATH:+:$PYTHONPATH}"
fi
# Compiled Triton kernels are cached on disk by default; caching the autotuning results too lets every process
# after the first skip mamba-ssm's benchmarking of its configs.
export TRITON_CACHE_AUTOTUNING=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec python3 benchmarks/gpu_check.py "$@"
