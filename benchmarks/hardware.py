"""How benchmark reports name the machine they ran on (a figure without its hardware means nothing)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

# x86 flags that raise matrix throughput beyond fp32 FMA: wide vectors, bf16/int8 dot products, tile units.
MATRIX_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8")


def _cpuinfo_field(name: str) -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    return _cpuinfo_field("model name") or platform.processor() or "unknown CPU"


def cpu_name() -> str:
    """e.g. "2-core x86_64 CPU (AMD EPYC ...)"."""
    return f"{os.cpu_count()}-core {platform.machine()} CPU ({cpu_model()})"


def matrix_features() -> str:
    """The matrix-relevant instruction sets this CPU reports, or "unknown" off Linux."""
    flags = _cpuinfo_field("flags")
    if flags is None:
        return "unknown"
    have = set(flags.split())
    return ", ".join(f for f in MATRIX_FLAGS if f in have) or "none of " + ", ".join(MATRIX_FLAGS)
