"""causal-conv1d's CUDA depthwise convolution behind ``conv.causal_conv1d``'s signature.

The (B, L, C) input is handed over as its (B, C, L) transpose, which is the kernel's channel-last layout: no
copy, and the only layout in which it accepts ``seq_idx`` (packed batches, so taps never read across a
sequence start). The SiLU that follows the convolution in Mamba-2 runs inside the kernel.
"""

from __future__ import annotations

import functools

import torch

from hnet_genomics.kernels.gpu_mamba import sequence_index


@functools.cache
def _conv_fn():
    from causal_conv1d import causal_conv1d_fn

    return causal_conv1d_fn


def require() -> None:
    _conv_fn()


def channel_last(x: torch.Tensor) -> torch.Tensor:
    """(B, L, C) -> (B, C, L) view in the kernel's channel-last layout; a copy only when the strides are not the
    multiples of 8 the kernel requires (a column slice of a wider projection usually is one)."""
    if x.stride(-1) != 1 or x.stride(1) % 8 or x.stride(0) % 8:
        x = x.contiguous()
    return x.transpose(1, 2)


def causal_conv1d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias=None,
    positions=None,
    has_resets: bool = False,
    activation: str | None = None,
) -> torch.Tensor | None:
    """x (B, L, C) -> (B, L, C) in x's dtype (weights may stay fp32 under autocast); None for widths or
    channel counts the kernel does not take."""
    if not 2 <= weight.shape[1] <= 4 or x.shape[-1] % 8:
        return None
    seq_idx = sequence_index(positions == 0) if has_resets else None
    if bias is not None:
        bias = bias.to(weight.dtype)
    y = _conv_fn()(channel_last(x), weight, bias, seq_idx=seq_idx, activation=activation)
    return y.transpose(1, 2)
