"""Dynamic chunking: routing, downsampling, EMA dechunking, straight-through confidence, ratio loss."""

from __future__ import annotations

import torch
from torch import nn

from hnet_genomics.kernels import ema as ema_k
from hnet_genomics.kernels import routing as routing_k
from hnet_genomics.model.cache import last_real
from hnet_genomics.model.geometry import Geometry


class RoutingModule(nn.Module):
    """p_t = (1 - cos(W_q x_t, W_k x_{t-1})) / 2; a boundary wherever p_t >= 0.5.

    W_q = W_k = I at init, so boundaries start where consecutive encoder states disagree.
    """

    def __init__(self, d: int):
        super().__init__()
        self.q_proj = nn.Linear(d, d, bias=False)
        self.k_proj = nn.Linear(d, d, bias=False)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        self.q_proj.weight.copy_(torch.eye(self.q_proj.weight.shape[0]))
        self.k_proj.weight.copy_(torch.eye(self.k_proj.weight.shape[0]))

    def forward(self, hidden: torch.Tensor, geom: Geometry) -> tuple[torch.Tensor, torch.Tensor]:
        p, boundary = routing_k.routing_fused(self.q_proj(hidden), self.k_proj(hidden), geom.starts)
        return p, boundary & geom.valid

    def step(self, hidden: torch.Tensor, prev_k: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """One token: returns (p (B,), this token's key for the next step)."""
        q, k = self.q_proj(hidden), self.k_proj(hidden)
        if prev_k is None:
            return torch.ones(hidden.shape[0], device=hidden.device), k
        # same arithmetic as the full forward: a 2-token sequence whose second probability we keep
        pair_q = torch.stack([q, q], 1)
        pair_k = torch.stack([prev_k, k], 1)
        no_start = torch.zeros(hidden.shape[0], 2, dtype=torch.bool, device=hidden.device)
        return routing_k.routing_probs(pair_q, pair_k, no_start)[:, 1], k

    def forward_from(
        self, hidden: torch.Tensor, valid: torch.Tensor, prev_k: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(p, boundary, key of each row's last real token) for a sequence continuing after a token whose key
        is ``prev_k`` (None: the sequence starts here, so its first token opens a chunk)."""
        q, k = self.q_proj(hidden), self.k_proj(hidden)
        b = hidden.shape[0]
        starts = torch.zeros(b, hidden.shape[1] + 1, dtype=torch.bool, device=hidden.device)
        if prev_k is None:
            if not bool(valid[:, 0].all()):
                raise ValueError("a sequence continued from its start needs at least one token in every row")
            prev_k, starts[:, 1] = torch.zeros_like(k[:, 0]), True
        # the forward's arithmetic on the sequence with the previous token's key in front
        p = routing_k.routing_probs(torch.cat([q[:, :1], q], 1), torch.cat([prev_k[:, None].to(k.dtype), k], 1), starts)
        p, key = p[:, 1:], last_real(k, valid, prev_k)
        assert key is not None  # prev_k is a tensor here
        return p, (p >= 0.5) & valid, key


def dechunk_from(
    inner: torch.Tensor, p_inner: torch.Tensor, boundary: torch.Tensor, smoothed: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``dechunk`` for a sequence continuing a chunk whose smoothed output is ``smoothed`` (B, d): that value
    enters the EMA as a chunk of probability 1 (which the recurrence takes as it is), and the positions
    before the first new boundary belong to it. Returns (per position, each row's value after its last chunk)."""
    x = torch.cat([smoothed[:, None].to(inner.dtype), inner], dim=1)
    p = torch.cat([torch.ones_like(p_inner[:, :1]), p_inner], dim=1)
    idx = torch.cumsum(boundary.long(), dim=1)
    out = ema_k.ema_dechunk(x, p, idx)
    return out, out[:, -1].float()  # padding at a row's end keeps its last chunk


def gather_positions(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x (B, L, D), index (B, M) -> (B, M, D)."""
    return torch.gather(x, 1, index[..., None].expand(-1, -1, x.shape[-1]))


def chunk_ids(boundary: torch.Tensor, geom: Geometry) -> torch.Tensor:
    """For every position, the index (within the row of the chunk sequence) of the chunk it belongs to
    (``Geometry.downsample`` gives the same as ``Downsampled.chunk_of``, with the gather index)."""
    return (torch.cumsum((boundary & geom.valid).long(), dim=1) - 1).clamp(min=0)


def dechunk(inner: torch.Tensor, p_inner: torch.Tensor, chunk_of: torch.Tensor) -> torch.Tensor:
    """EMA-smooth the chunk outputs with their boundary probabilities, then plug each back over its chunk
    (``chunk_of``: (B, L) the chunk of every position)."""
    return ema_k.ema_dechunk(inner, p_inner, chunk_of)


def confidence_ste(p: torch.Tensor, boundary: torch.Tensor) -> torch.Tensor:
    """c_t = p_t on boundaries, 1 - p_t elsewhere; forward value 1, gradient flows into c."""
    c = torch.where(boundary, p, 1 - p)
    return c + (1 - c).detach()


def ratio_loss(boundary: torch.Tensor, p: torch.Tensor, valid: torch.Tensor, target: float) -> torch.Tensor:
    """N/(N-1) * ((N-1) F G + (1-F)(1-G)): equals 1 exactly when F = G = 1/N, larger elsewhere.

    F = fraction of tokens selected (hard), G = mean boundary probability (soft, carries the gradient).
    """
    n = float(target)
    count = valid.sum().clamp(min=1)
    f = (boundary & valid).sum() / count
    g = (p * valid).sum() / count
    return n / (n - 1) * ((n - 1) * f * g + (1 - f) * (1 - g))


def pad_width(x: torch.Tensor, pad: torch.Tensor | None) -> torch.Tensor:
    """Widen (.., d) to (.., d + len(pad)) with a learned vector, for an inner stage of larger d_model."""
    if pad is None:
        return x
    return torch.cat([x, pad.to(x.dtype).expand(*x.shape[:-1], -1)], dim=-1)
