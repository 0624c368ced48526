"""RMSNorm and the gated RMSNorm of Mamba-2 (normalise y * silu(z))."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hnet_genomics.kernels import dispatch


def rms_norm_ref(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    xf = x.float()
    out = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return (out * weight.float()).to(x.dtype)


def gated_rms_norm_ref(
    x: torch.Tensor, z: torch.Tensor, weight: torch.Tensor, eps: float, group_size: int | None = None
) -> torch.Tensor:
    """Gate first, then normalise per group of ``group_size`` channels (Mamba-2's norm_before_gate=False)."""
    xf = x.float() * F.silu(z.float())
    d = xf.shape[-1]
    g = group_size or d
    xg = xf.view(*xf.shape[:-1], d // g, g)
    xg = xg * torch.rsqrt(xg.pow(2).mean(-1, keepdim=True) + eps)
    return (xg.view_as(xf) * weight.float()).to(x.dtype)


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """mamba-ssm's fused Triton RMSNorm on CUDA, the reference otherwise."""
    fast = dispatch.gpu_kernel("rms_norm", x)
    return fast(x, weight, eps) if fast is not None else rms_norm_ref(x, weight, eps)


def gated_rms_norm(
    x: torch.Tensor, z: torch.Tensor, weight: torch.Tensor, eps: float, group_size: int | None = None
) -> torch.Tensor:
    """mamba-ssm's fused gated Triton RMSNorm on CUDA, the reference otherwise."""
    fast = dispatch.gpu_kernel("gated_rms_norm", x)
    if fast is not None:
        return fast(x, z, weight, eps, group_size)
    return gated_rms_norm_ref(x, z, weight, eps, group_size)
