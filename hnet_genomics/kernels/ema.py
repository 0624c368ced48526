"""The dechunk EMA  z_t = p_t * x_t + (1 - p_t) * z_{t-1}  over chunk sequences.

x (B, M, D), p (B, M) in [0, 1]. A sequence start carries p = 1, which resets the recurrence, so packed
batches need no extra sequence index.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hnet_genomics.kernels import dispatch
from hnet_genomics.kernels.ssd import segsum


def _acc(x: torch.Tensor) -> torch.dtype:
    """Accumulate in fp32, or fp64 when given fp64 (so tests can compare tightly)."""
    return torch.promote_types(x.dtype, torch.float32)


def ema_scan_ref(x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Sequential loop in fp32: the definition."""
    acc = _acc(x)
    z = torch.zeros_like(x[:, 0], dtype=acc)
    out = []
    for t in range(x.shape[1]):
        pt = p[:, t, None].to(acc)
        z = pt * x[:, t].to(acc) + (1 - pt) * z
        out.append(z)
    return torch.stack(out, dim=1).to(x.dtype)


def ema_scan_chunked(x: torch.Tensor, p: torch.Tensor, chunk_size: int = 64) -> torch.Tensor:
    """Chunked closed form: inside a chunk z = L (p*x) with L[i, j] = prod_{k=j+1..i} (1 - p_k)."""
    b, m, d = x.shape
    q = chunk_size
    pad = (-m) % q
    acc = _acc(x)
    pf = F.pad(p.to(acc), (0, pad))
    xf = F.pad(x.to(acc), (0, 0, 0, pad))
    log_keep = torch.log1p(-pf.clamp(max=1.0))  # log(1 - p); -inf where p == 1 (a reset)
    c = pf.shape[1] // q
    log_keep = log_keep.view(b, c, q)
    seg = segsum(log_keep)  # (b, c, q, q)
    px = (pf[..., None] * xf).view(b, c, q, d)
    local = torch.einsum("bcij,bcjd->bcid", torch.exp(seg), px)
    carry_decay = torch.exp(log_keep[..., :1] + seg[..., :, 0])  # (b, c, q): prod_{k=0..i} (1 - p_k)
    z_prev = x.new_zeros(b, d, dtype=acc)
    outs = []
    for ci in range(c):
        out = local[:, ci] + carry_decay[:, ci, :, None] * z_prev[:, None, :]
        outs.append(out)
        z_prev = out[:, -1]
    return torch.cat(outs, dim=1)[:, :m].to(x.dtype)


def plug_back(z: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """z (B, M, D), idx (B, L) chunk of each position -> (B, L, D)."""
    return torch.gather(z, 1, idx[..., None].expand(-1, -1, z.shape[-1]))


def ema_dechunk_ref(x: torch.Tensor, p: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """The definition of the fused dechunk: sequential EMA over chunks, then every position takes its chunk."""
    return plug_back(ema_scan_ref(x, p), idx)


def ema_dechunk(x: torch.Tensor, p: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """EMA over chunks fused with the plug-back to positions (one Triton launch on CUDA)."""
    fast = dispatch.gpu_kernel("ema_dechunk", x)
    if fast is not None:
        return fast(x, p, idx)
    return plug_back(ema_scan_chunked(x, p), idx)
