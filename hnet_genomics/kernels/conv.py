"""Causal depthwise 1-D convolution with sequence resets (packed batches), reference and fast path."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def causal_conv1d_ref(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                      positions: torch.Tensor | None = None) -> torch.Tensor:
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


def causal_conv1d(x, weight, bias=None, positions=None, has_resets: bool = False):
    """Fast path: one grouped conv when no sequence in the batch starts mid-row, else the masked taps."""
    if has_resets:
        return causal_conv1d_ref(x, weight, bias, positions)
    k = weight.shape[1]
    y = F.conv1d(F.pad(x.transpose(1, 2), (k - 1, 0)), weight[:, None, :], bias, groups=x.shape[-1])
    return y.transpose(1, 2)


def causal_conv1d_step(conv_state: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, bias=None):
    """conv_state (B, C, K) holds the last K inputs; x (B, C). Returns (y, new_state)."""
    conv_state = torch.cat([conv_state[:, :, 1:], x[:, :, None]], dim=-1)
    y = (conv_state * weight).sum(-1)
    return (y if bias is None else y + bias), conv_state
