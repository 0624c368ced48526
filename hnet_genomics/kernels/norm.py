"""RMSNorm, the residual add fused with it (pre-norm blocks), and the gated RMSNorm of Mamba-2 (normalise
y * silu(z))."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hnet_genomics.kernels import dispatch


def rms_norm_ref(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    xf = x.float()
    out = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    return (out * weight.float()).to(x.dtype)


def add_rms_norm_ref(
    x: torch.Tensor,
    residual: torch.Tensor | None,
    weight: torch.Tensor,
    eps: float,
    out_dtype: torch.dtype | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(RMSNorm of the new residual in ``out_dtype`` (x's by default), the new residual ``residual + x`` in
    fp32): a pre-norm block's residual add and its next norm in one (x alone starts the residual)."""
    total = x.float() if residual is None else residual + x.float()
    return rms_norm_ref(total, weight, eps).to(out_dtype or x.dtype), total


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


def add_rms_norm(
    x: torch.Tensor,
    residual: torch.Tensor | None,
    weight: torch.Tensor,
    eps: float,
    out_dtype: torch.dtype | None = None,
    keep_residual: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """mamba-ssm's fused add + RMSNorm on CUDA (one kernel each way: the residual read once, the normalised
    output written in x's dtype, the residual kept in fp32, as the reference H-Net's blocks do), the reference
    otherwise. ``keep_residual=False`` (a stack's final norm) returns None for the residual."""
    fast = dispatch.gpu_kernel("add_rms_norm", x)
    if fast is not None and (res := fast(x, residual, weight, eps, keep_residual)) is not None:
        normed, total = res
        return (normed if out_dtype in (None, normed.dtype) else normed.to(out_dtype)), total
    normed, total = add_rms_norm_ref(x, residual, weight, eps, out_dtype)
    return normed, total if keep_residual else None


def gated_rms_norm(
    x: torch.Tensor, z: torch.Tensor, weight: torch.Tensor, eps: float, group_size: int | None = None
) -> torch.Tensor:
    """mamba-ssm's fused gated Triton RMSNorm on CUDA, the reference otherwise."""
    fast = dispatch.gpu_kernel("gated_rms_norm", x)
    if fast is not None:
        return fast(x, z, weight, eps, group_size)
    return gated_rms_norm_ref(x, z, weight, eps, group_size)
