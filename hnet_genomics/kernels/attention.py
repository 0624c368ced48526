"""Causal attention over padded or packed batches: a naive softmax reference and the SDPA path.

Sequences are described by ``seq_idx`` (B, L): a key is visible to a query if it belongs to the same
sequence, is not in the future and lies inside the sliding window. Masks are boolean, never additive floats.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from hnet_genomics.kernels import dispatch


def visibility_mask(seq_idx: torch.Tensor, window: int = -1) -> torch.Tensor:
    """(B, L) -> (B, 1, L, L) bool, True where query i may attend key j."""
    l = seq_idx.shape[1]
    i = torch.arange(l, device=seq_idx.device)
    allowed = (i[None, :] <= i[:, None])
    if window > 0:
        allowed = allowed & (i[:, None] - i[None, :] < window)
    same = seq_idx[:, :, None] == seq_idx[:, None, :]
    return (allowed[None] & same)[:, None]


def attention_ref(q, k, v, seq_idx, window: int = -1):
    """q, k, v (B, H, L, Dh). Explicit masked softmax in fp32."""
    scores = torch.einsum("bhid,bhjd->bhij", q.float(), k.float()) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~visibility_mask(seq_idx, window), float("-inf"))
    return torch.einsum("bhij,bhjd->bhid", scores.softmax(-1), v.float()).to(q.dtype)


def attention(q, k, v, seq_idx, window: int = -1, single_sequence_rows: bool = True):
    """flash-attn on CUDA when it loads; else SDPA, plain ``is_causal`` when every row is one sequence and
    there is no window."""
    fast = dispatch.gpu_kernel("attention", q)
    if fast is not None and (out := fast(q, k, v, seq_idx, window, single_sequence_rows)) is not None:
        return out
    if single_sequence_rows and window <= 0:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=visibility_mask(seq_idx, window))
