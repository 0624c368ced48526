"""Mamba-2 mixer: in-projection, causal depthwise conv, SSD scan, gated RMSNorm, D skip, out-projection."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from hnet_genomics.config import SSMConfig
from hnet_genomics.kernels import conv as conv_k
from hnet_genomics.kernels import norm as norm_k
from hnet_genomics.kernels import ssd as ssd_k
from hnet_genomics.model.geometry import Geometry


@dataclass
class MambaState:
    conv: torch.Tensor  # (B, conv_dim, d_conv): last inputs of the depthwise conv
    ssm: torch.Tensor  # (B, H, P, N) fp32


class Mamba2(nn.Module):
    def __init__(self, d_model: int, cfg: SSMConfig, norm_eps: float = 1e-5):
        super().__init__()
        self.d_model, self.cfg, self.eps = d_model, cfg, norm_eps
        self.d_inner = cfg.expand * d_model
        self.nheads = self.d_inner // cfg.head_dim
        self.conv_dim = self.d_inner + 2 * cfg.ngroups * cfg.d_state
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner + 2 * cfg.ngroups * cfg.d_state + self.nheads,
                                 bias=False)
        self.conv_weight = nn.Parameter(torch.empty(self.conv_dim, cfg.d_conv))
        self.conv_bias = nn.Parameter(torch.zeros(self.conv_dim))
        self.dt_bias = nn.Parameter(torch.empty(self.nheads))
        self.A_log = nn.Parameter(torch.empty(self.nheads))
        self.D = nn.Parameter(torch.ones(self.nheads))
        self.norm_weight = nn.Parameter(torch.ones(self.d_inner))
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Conv weight and bias as nn.Conv1d's default (U(+-1/sqrt(d_conv)), mamba-ssm's depthwise conv),
        dt log-uniform in [dt_min, dt_max] through the softplus, A in [1, 16], D = 1."""
        bound = 1 / math.sqrt(self.cfg.d_conv)
        nn.init.uniform_(self.conv_weight, -bound, bound)
        nn.init.uniform_(self.conv_bias, -bound, bound)
        dt = torch.exp(torch.rand(self.nheads) * (math.log(self.cfg.dt_max) - math.log(self.cfg.dt_min))
                       + math.log(self.cfg.dt_min)).clamp(min=1e-4)
        self.dt_bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
        self.A_log.copy_(torch.log(torch.empty(self.nheads).uniform_(1, 16)))
        self.D.fill_(1.0)
        self.norm_weight.fill_(1.0)
        self.dt_bias._no_weight_decay = True
        self.A_log._no_weight_decay = True
        self.D._no_weight_decay = True

    def _split(self, zxbcdt):
        n = self.cfg.ngroups * self.cfg.d_state
        z, xbc, dt = torch.split(zxbcdt, [self.d_inner, self.d_inner + 2 * n, self.nheads], dim=-1)
        return z, xbc, dt

    def _heads(self, xbc):
        """Conv output -> x (.., H, P), B and C (.., G, N), for a sequence or a single step."""
        n = self.cfg.ngroups * self.cfg.d_state
        x, Bm, Cm = torch.split(xbc, [self.d_inner, n, n], dim=-1)
        x = rearrange(x, "... (h p) -> ... h p", p=self.cfg.head_dim)
        Bm = rearrange(Bm, "... (g n) -> ... g n", g=self.cfg.ngroups)
        Cm = rearrange(Cm, "... (g n) -> ... g n", g=self.cfg.ngroups)
        return x, Bm, Cm

    def _finish(self, y, x, z):
        y = y + x * self.D.to(x.dtype)[:, None]
        y = rearrange(y, "... h p -> ... (h p)")
        y = norm_k.gated_rms_norm(y, z, self.norm_weight, self.eps, group_size=self.d_inner // self.cfg.ngroups)
        return self.out_proj(y)

    def forward(self, hidden: torch.Tensor, geom: Geometry) -> torch.Tensor:
        z, xbc, dt = self._split(self.in_proj(hidden))
        xbc = F.silu(conv_k.causal_conv1d(xbc, self.conv_weight, self.conv_bias, geom.positions,
                                          has_resets=geom.has_resets))
        x, Bm, Cm = self._heads(xbc)
        dt = F.softplus(dt.float() + self.dt_bias.float())
        A = -torch.exp(self.A_log.float())
        reset = geom.starts if geom.has_resets else None
        y = ssd_k.ssd_scan_chunked(x, dt, A, Bm, Cm, reset=reset, chunk_size=self.cfg.chunk_size)
        return self._finish(y, x, z)

    def init_state(self, batch: int, device, dtype) -> MambaState:
        return MambaState(
            conv=torch.zeros(batch, self.conv_dim, self.cfg.d_conv, device=device, dtype=dtype),
            ssm=torch.zeros(batch, self.nheads, self.cfg.head_dim, self.cfg.d_state, device=device,
                            dtype=torch.float32))

    def step(self, hidden: torch.Tensor, state: MambaState) -> tuple[torch.Tensor, MambaState]:
        """hidden (B, D) -> (B, D) for one new token."""
        z, xbc, dt = self._split(self.in_proj(hidden))
        xbc, conv_state = conv_k.causal_conv1d_step(state.conv, xbc, self.conv_weight, self.conv_bias)
        xbc = F.silu(xbc)
        x, Bm, Cm = self._heads(xbc)
        dt = F.softplus(dt.float() + self.dt_bias.float())
        y, ssm_state = ssd_k.ssd_step(state.ssm, x, dt, -torch.exp(self.A_log.float()), Bm, Cm)
        return self._finish(y, x, z), MambaState(conv_state, ssm_state)
