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


# Dense (no sparsity) bf16 tensor-core peak from NVIDIA's datasheets, matched against torch's device name in this
# order (the first name contained wins, so variants come before their family).
DENSE_BF16_PEAKS = (
    ("H200 NVL", 835e12, "H200 NVL"),
    ("H200", 989e12, "H200 SXM"),
    ("H100 NVL", 835e12, "H100 NVL"),
    ("H100 PCIe", 756e12, "H100 PCIe"),
    ("H100", 989e12, "H100 SXM"),
    ("A100", 312e12, "A100"),
    ("L40S", 362e12, "L40S"),
)


def dense_bf16_peak(device_name: str) -> tuple[float, str] | None:
    """(FLOP/s, the datasheet entry it came from) for a GPU name, None when the table does not know it."""
    for key, flops, label in DENSE_BF16_PEAKS:
        if key in device_name:
            return flops, label
    return None
