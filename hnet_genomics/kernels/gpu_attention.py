"""flash-attn behind ``attention.attention``'s signature: varlen for packed rows, a native sliding window.

SDPA already reaches flash kernels for plain causal rows; flash-attn matters for packed batches (SDPA would
need a dense (L, L) mask) and for windows. Only fp16/bf16 and head sizes up to 256 run here.
"""

from __future__ import annotations

import functools
import types

import torch

from hnet_genomics.kernels.attention import Runs, runs_of


@functools.cache
def _flash() -> types.SimpleNamespace:
    from flash_attn import flash_attn_func, flash_attn_varlen_func

    return types.SimpleNamespace(dense=flash_attn_func, varlen=flash_attn_varlen_func)


def require() -> None:
    _flash()


def attention(
    q, k, v, seq_idx, window: int = -1, single_sequence_rows: bool = True, runs: Runs | None = None
) -> torch.Tensor | None:
    """q, k, v (B, H, L, Dh) -> (B, H, L, Dh); a window of w sees itself and the w keys before it. Packed rows
    take the varlen kernel over ``runs`` (read from ``seq_idx`` when not given)."""
    d = q.shape[-1]
    if q.dtype not in (torch.float16, torch.bfloat16) or d % 8 or d > 256:
        return None
    fa = _flash()
    window_size = (window, 0) if window > 0 else (-1, -1)
    qt, kt, vt = (t.transpose(1, 2) for t in (q, k, v))  # (B, L, H, Dh)
    if single_sequence_rows:
        out = fa.dense(qt, kt, vt, causal=True, window_size=window_size)
    else:
        b, l, h, _ = qt.shape
        known = runs_of(seq_idx, runs)
        cu, longest = known.cu, known.longest
        flat = [t.reshape(b * l, h, d) for t in (qt, kt, vt)]
        out = fa.varlen(*flat, cu, cu, longest, longest, causal=True, window_size=window_size).view(b, l, h, d)
    return out.transpose(1, 2)
