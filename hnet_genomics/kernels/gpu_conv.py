"""causal-conv1d's CUDA depthwise convolution behind ``conv.causal_conv1d``'s signature.

Packed batches pass ``seq_idx`` so taps never read across a sequence start; the kernel only accepts that in
channel-last layout, which is exactly a (B, L, C) tensor seen as (B, C, L).
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


def causal_conv1d(x: torch.Tensor, weight: torch.Tensor, bias=None, positions=None,
                  has_resets: bool = False) -> torch.Tensor | None:
    """x (B, L, C) -> (B, L, C); None for widths or channel counts the kernel does not take."""
    if not 2 <= weight.shape[1] <= 4 or x.shape[-1] % 8:
        return None
    seq_idx = sequence_index(positions == 0) if has_resets else None
    y = _conv_fn()(x.contiguous().transpose(1, 2), weight, bias, seq_idx=seq_idx)
    return y.transpose(1, 2)
