"""Routing probability p_t = (1 - cos(q_t, k_{t-1})) / 2, with p = 1 at every sequence start."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hnet_genomics.kernels import dispatch


def routing_probs_ref(q: torch.Tensor, k: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
    """q, k (B, L, D) projections of the same hidden states; starts (B, L) bool. Returns p (B, L) in fp32."""
    qn = F.normalize(q.float(), dim=-1)
    kn = F.normalize(k.float(), dim=-1)
    cos = (qn[:, 1:] * kn[:, :-1]).sum(-1)
    p = torch.clamp((1 - cos) / 2, 0.0, 1.0)
    p = F.pad(p, (1, 0), value=1.0)
    return p.masked_fill(starts, 1.0)


def routing_fused_ref(q: torch.Tensor, k: torch.Tensor, starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(p, boundary = p >= 0.5): what the fused kernel computes. Padding is for the caller to mask."""
    p = routing_probs_ref(q, k, starts)
    return p, p >= 0.5


def routing_fused(q: torch.Tensor, k: torch.Tensor, starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Dispatch point for probabilities and boundaries together (one Triton launch on CUDA)."""
    fast = dispatch.gpu_kernel("routing", q)
    if fast is not None:
        return fast(q, k, starts)
    return routing_fused_ref(q, k, starts)


def routing_probs(q, k, starts):
    """Dispatch point for the routing probabilities alone."""
    fast = dispatch.gpu_kernel("routing", q)
    if fast is not None:
        return fast(q, k, starts)[0]
    return routing_probs_ref(q, k, starts)
