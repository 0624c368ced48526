#!/usr/bin/env bash
# The first GPU hour as one command (see benchmarks/gpu_check.py), from the repository root, no network needed:
#   bash benchmarks/gpu_check.sh WHEELS_DIR [gpu_check.py options, e.g. --allow-missing causal-conv1d,flash-attn]
# WHEELS_DIR comes from benchmarks/gpu_wheels.sh; pass an empty string if everything is installed already.
set -euo pipefail
cd "$(dirname "$0")/.."
wheels=${1-}
shift || true
if [ -n "$wheels" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/hnet-site \
    "$wheels"/*.whl
  export PYTHONPATH="/tmp/hnet-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
exec python3 benchmarks/gpu_check.py "$@"
