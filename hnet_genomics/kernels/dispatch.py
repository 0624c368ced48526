"""Which implementation runs each op. Only the pure-torch path is wired here; GPU kernels register later."""

from __future__ import annotations

import os

BACKEND_ENV = "HNET_KERNELS"  # "torch" forces the pure-torch path; "auto" picks the fastest available


def requested_backend() -> str:
    value = os.environ.get(BACKEND_ENV, "auto").lower()
    if value not in ("auto", "torch", "gpu"):
        raise ValueError(f"{BACKEND_ENV} must be auto, torch or gpu, got {value!r}")
    return value
