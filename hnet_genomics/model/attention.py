"""Causal multi-head attention with rotary position embedding and an optional sliding window."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn

from hnet_genomics.kernels import attention as attn_k
from hnet_genomics.model.geometry import Geometry


def rotary_tables(positions: torch.Tensor, rot_dim: int, base: float = 10000.0):
    """cos/sin of shape (*positions.shape, rot_dim // 2) for integer positions."""
    inv_freq = 1.0 / (base ** (torch.arange(0, rot_dim, 2, device=positions.device, dtype=torch.float32) / rot_dim))
    angles = positions.float()[..., None] * inv_freq
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the first ``2 * cos.shape[-1]`` channels of each head (half-split convention)."""
    r = cos.shape[-1]
    x1, x2, rest = x[..., :r], x[..., r : 2 * r], x[..., 2 * r :]
    xf1, xf2 = x1.float(), x2.float()
    out1 = xf1 * cos - xf2 * sin
    out2 = xf2 * cos + xf1 * sin
    return torch.cat([out1.to(x.dtype), out2.to(x.dtype), rest], dim=-1)


@dataclass
class KVCache:
    k: torch.Tensor  # (B, H, capacity, Dh)
    v: torch.Tensor
    length: torch.Tensor  # (B,) tokens stored per row (rows advance independently inside an H-Net)


class CausalSelfAttention(nn.Module):
    def __init__(self, d_model: int, num_heads: int, rotary_dim: int, window: int = -1):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, d_model // num_heads
        self.rotary_dim, self.window = rotary_dim, window
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.out_proj = nn.Linear(d_model, d_model, bias=False)

    def _qkv(self, hidden, positions):
        q, k, v = rearrange(self.qkv(hidden), "... l (three h d) -> three ... h l d", three=3, h=self.num_heads)
        if self.rotary_dim:
            cos, sin = rotary_tables(positions, self.rotary_dim)
            cos, sin = cos[..., None, :, :], sin[..., None, :, :]
            q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        return q, k, v

    def forward(self, hidden: torch.Tensor, geom: Geometry) -> torch.Tensor:
        q, k, v = self._qkv(hidden, geom.positions)
        runs = None
        if geom.has_resets:  # a packed row: its sequences are the runs, known on the host
            assert geom.cu_seqlens is not None and geom.host_cu is not None  # from_cu_seqlens sets both
            runs = attn_k.Runs(geom.cu_seqlens, geom.host_cu)
        out = attn_k.attention(q, k, v, geom.seq_idx, self.window, not geom.has_resets, runs)
        return self.out_proj(rearrange(out, "b h l d -> b l (h d)"))

    def forward_from(self, hidden: torch.Tensor, valid: torch.Tensor, cache: KVCache) -> tuple[torch.Tensor, KVCache]:
        """hidden (B, L, D) continuing each row's cached keys and values (right-padded rows, ``valid`` marks
        real tokens): queries see the row's cached keys and the new ones up to themselves, at positions that
        continue the cache's, as in one forward over the whole sequence."""
        b, length, _ = hidden.shape
        new = torch.arange(length, device=hidden.device)
        q, k, v = self._qkv(hidden, cache.length[:, None] + new[None])  # (B, H, L, Dh)
        cap = cache.k.shape[2]
        old = torch.arange(cap, device=hidden.device)
        sees_old = old[None, None, :] < cache.length[:, None, None]  # (B, 1, cap)
        sees_new = new[:, None] >= new[None, :]  # (L, L) causal
        if self.window > 0:
            query_pos = cache.length[:, None, None] + new[None, :, None]
            sees_old = sees_old & (query_pos - old[None, None, :] <= self.window)
            sees_new = sees_new & (new[:, None] - new[None, :] <= self.window)
        visible = torch.cat([sees_old.expand(b, length, cap), sees_new.expand(b, length, length)], dim=-1)
        keys = torch.cat([cache.k.to(k.dtype), k], dim=2)
        values = torch.cat([cache.v.to(v.dtype), v], dim=2)
        out = torch.nn.functional.scaled_dot_product_attention(q, keys, values, attn_mask=visible[:, None])
        n = valid.sum(1)
        new_len = cache.length + n
        size = max(cap, int(new_len.max()) if b else 0)
        kc = k.new_zeros(b, k.shape[1], size, k.shape[-1])
        vc = torch.zeros_like(kc)
        kc[:, :, :cap], vc[:, :, :cap] = cache.k, cache.v
        rows, cols = valid.nonzero(as_tuple=True)
        kc[rows, :, cache.length[rows] + cols] = k[rows, :, cols]
        vc[rows, :, cache.length[rows] + cols] = v[rows, :, cols]
        return self.out_proj(rearrange(out, "b h l d -> b l (h d)")), KVCache(kc, vc, new_len)

    def init_state(self, batch: int, device, dtype, capacity: int = 256) -> KVCache:
        shape = (batch, self.num_heads, capacity, self.head_dim)
        return KVCache(
            torch.zeros(shape, device=device, dtype=dtype),
            torch.zeros(shape, device=device, dtype=dtype),
            torch.zeros(batch, dtype=torch.long, device=device),
        )

    def step(self, hidden: torch.Tensor, cache: KVCache) -> tuple[torch.Tensor, KVCache]:
        """hidden (B, D): append this token's key/value at each row's own position and attend."""
        b = hidden.shape[0]
        q, k, v = self._qkv(hidden[:, None], cache.length[:, None])  # (B, H, 1, Dh)
        kc, vc = cache.k, cache.v
        if int(cache.length.max()) >= kc.shape[2]:  # grow geometrically
            pad = torch.zeros_like(kc)
            kc, vc = torch.cat([kc, pad], 2), torch.cat([vc, pad], 2)
        rows = torch.arange(b, device=hidden.device)
        kc, vc = kc.clone(), vc.clone()
        kc[rows, :, cache.length] = k[:, :, 0]
        vc[rows, :, cache.length] = v[:, :, 0]
        new_len = cache.length + 1
        j = torch.arange(kc.shape[2], device=hidden.device)
        visible = j[None] < new_len[:, None]
        if self.window > 0:
            visible = visible & (new_len[:, None] - 1 - j[None] <= self.window)
        out = torch.nn.functional.scaled_dot_product_attention(q, kc, vc, attn_mask=visible[:, None, None, :])
        return self.out_proj(rearrange(out, "b h 1 d -> b (h d)")), KVCache(kc, vc, new_len)
