"""What Triton's interpreter (``TRITON_INTERPRET=1``) needs to run GPU kernels, ours and mamba-ssm's, on CPU
tensors: an autotuning choice without benchmarking (the config with the largest tiles, so the fewest programs
are stepped through in Python), no CUDA device context, and device properties (an H100's 132 SMs).

Used by the launch counter (``kernels.trace.gpu_kernels_on_cpu``), the interpreter tests and the CPU runs of
the kernel benchmarks.
"""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator

import torch


def largest_tiles(config) -> int:
    """The tile area of an autotuning config (product of its BLOCK* sizes)."""
    area = 1
    for key, value in config.kwargs.items():
        if key.startswith("BLOCK"):
            area *= value
    return area


@contextlib.contextmanager
def interpreted_as_gpu() -> Iterator[None]:
    """Inside, autotuned kernels take their largest-tile config and CUDA device queries answer for an H100."""
    from triton.runtime.autotuner import Autotuner

    sm = types.SimpleNamespace(multi_processor_count=132, name="Triton interpreter", gcnArchName="")
    patches = [
        (Autotuner, "prune_configs", lambda self, kwargs, *a, **k: [max(self.configs, key=largest_tiles)]),
        (torch.cuda, "device", lambda *a, **k: contextlib.nullcontext()),
        (torch.cuda, "get_device_properties", lambda *a, **k: sm),
    ]
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in patches]
    try:
        for obj, name, value in patches:
            setattr(obj, name, value)
        yield
    finally:
        for obj, name, value in saved:
            setattr(obj, name, value)
