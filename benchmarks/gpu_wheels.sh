#!/usr/bin/env bash
# Wheels benchmarks/gpu_check.sh installs on a GPU machine that has no network, built on one that has.
# mamba-ssm is built without its CUDA extension (Mamba-2 needs only its Triton kernels); pysam is the binary
# wheel for the GPU machine's Python (default 3.12). causal-conv1d and flash-attn need nvcc and the GPU
# machine's exact torch to build: build them there (README: GPU install) or pass --allow-missing to the check.
#   bash benchmarks/gpu_wheels.sh DIR [PYTHON_VERSION]
set -euo pipefail
dir=${1:?usage: gpu_wheels.sh DIR [PYTHON_VERSION]}
py=${2:-3.12}
mkdir -p "$dir"
MAMBA_SKIP_CUDA_BUILD=TRUE MAMBA_FORCE_BUILD=TRUE \
  python3 -m pip wheel -q --no-deps --no-build-isolation --no-cache-dir -w "$dir" mamba-ssm==2.3.2.post1
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$py" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$dir" pysam==0.24.1
ls -l "$dir"
