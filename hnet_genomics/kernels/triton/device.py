"""Launch guard shared by our Triton kernels.

Triton launches on the *current* CUDA device, so a tensor on ``cuda:1`` while ``cuda:0`` is current would be
read by a kernel running on the wrong GPU. Every launch sits inside ``on_device_of(tensor)``, as mamba-ssm's
wrappers do; CPU tensors (the Triton interpreter) need no guard.
"""

from __future__ import annotations

import contextlib

import torch


def on_device_of(tensor: torch.Tensor) -> contextlib.AbstractContextManager:
    return torch.cuda.device(tensor.device) if tensor.is_cuda else contextlib.nullcontext()
