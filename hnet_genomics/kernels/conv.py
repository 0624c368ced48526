"""Causal depthwise 1-D convolution with sequence resets (packed batches): the reference and the dispatch point
(causal-conv1d, ``triton/conv.py``, or the torch taps)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hnet_genomics.kernels import dispatch


def causal_conv1d_ref(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, positions: torch.Tensor | None = None
) -> torch.Tensor:
    """x (B, L, C), weight (C, K). Tap k reads x[t-k] only if it lies in the same sequence (positions[t] >= k)."""
    b, l, c = x.shape
    k = weight.shape[1]
    out = x * weight[:, k - 1]
    for shift in range(1, k):
        shifted = F.pad(x, (0, 0, shift, 0))[:, :l]
        if positions is not None:
            shifted = shifted * (positions >= shift)[..., None].to(x.dtype)
        out = out + shifted * weight[:, k - 1 - shift]
    return out if bias is None else out + bias


def causal_conv1d_grouped(x, weight, bias=None):
    """The same convolution as one grouped ``conv1d`` (no resets): an independent check of the taps."""
    k = weight.shape[1]
    y = F.conv1d(F.pad(x.transpose(1, 2), (k - 1, 0)), weight[:, None, :], bias, groups=x.shape[-1])
    return y.transpose(1, 2)


LOW_PRECISION = (torch.bfloat16, torch.float16)


def causal_conv1d(x, weight, bias=None, positions=None, has_resets: bool = False, activation: str | None = None):
    """On CUDA causal-conv1d, else our Triton kernel (both fuse the SiLU when ``activation="silu"``, accumulate
    in fp32 and return x's dtype); otherwise K shifted multiply-adds. On CPU the taps beat grouped ``conv1d``,
    whose depthwise backward is two orders of magnitude slower (seen: ~2 s vs ~20 ms at 8 x 1024 x 288).

    Off the CPU, a bf16/fp16 activation meets fp32 parameters on the taps as autocast would have it: the
    parameters are cast to the activation's dtype, instead of every tap promoting the activation to fp32 (which
    doubles what the taps save and hands an fp32 tensor to the SSM). CPU results are left as they were."""
    if activation not in (None, "silu"):
        raise ValueError(f"activation must be None or 'silu', got {activation!r}")
    fast = dispatch.gpu_kernel("conv", x)
    if fast is not None and (y := fast(x, weight, bias, positions, has_resets, activation)) is not None:
        return y
    if x.device.type != "cpu":
        return causal_conv1d_taps(x, weight, bias, positions, has_resets, activation)
    y = causal_conv1d_ref(x, weight, bias, positions if has_resets else None)
    return F.silu(y) if activation == "silu" else y


def causal_conv1d_taps(x, weight, bias=None, positions=None, has_resets: bool = False, activation=None):
    """The torch taps in the activation's dtype: fp32 parameters are cast to a bf16/fp16 activation's dtype."""
    if x.dtype in LOW_PRECISION and weight.dtype != x.dtype:
        weight = weight.to(x.dtype)
        bias = None if bias is None else bias.to(x.dtype)
    y = causal_conv1d_ref(x, weight, bias, positions if has_resets else None)
    return F.silu(y) if activation == "silu" else y


def causal_conv1d_step(conv_state: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, bias=None):
    """conv_state (B, C, K) holds the last K inputs; x (B, C). Returns (y, new_state)."""
    conv_state = torch.cat([conv_state[:, :, 1:], x[:, :, None]], dim=-1)
    y = (conv_state * weight).sum(-1)
    return (y if bias is None else y + bias), conv_state
