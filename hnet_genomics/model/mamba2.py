"""Mamba-2 mixer: in-projection, then causal depthwise conv, SSD scan with D skip, gated RMSNorm and
out-projection (``kernels.mamba_mixer``, fused into one kernel on GPUs that have it)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from hnet_genomics.config import SSMConfig
from hnet_genomics.kernels import conv as conv_k
from hnet_genomics.kernels import mamba_mixer as mixer_k
from hnet_genomics.kernels import norm as norm_k
from hnet_genomics.kernels import ssd as ssd_k
from hnet_genomics.model.geometry import Geometry

# Attribute that marks a parameter the optimiser must not decay (mamba-ssm's convention); set on the tensor
# itself so the mark travels with it into any parameter group.
NO_WEIGHT_DECAY = "_no_weight_decay"


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
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner + 2 * cfg.ngroups * cfg.d_state + self.nheads, bias=False)
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
        dt = torch.exp(
            torch.rand(self.nheads) * (math.log(self.cfg.dt_max) - math.log(self.cfg.dt_min))
            + math.log(self.cfg.dt_min)
        ).clamp(min=1e-4)
        self.dt_bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
        self.A_log.copy_(torch.log(torch.empty(self.nheads).uniform_(1, 16)))
        self.D.fill_(1.0)
        self.norm_weight.fill_(1.0)
        for param in (self.dt_bias, self.A_log, self.D):
            setattr(param, NO_WEIGHT_DECAY, True)

    @property
    def dims(self) -> mixer_k.MixerDims:
        c = self.cfg
        return mixer_k.MixerDims(self.d_inner, self.nheads, c.head_dim, c.ngroups, c.d_state, c.chunk_size, self.eps)

    def weights(self) -> mixer_k.MixerWeights:
        return mixer_k.MixerWeights(
            self.conv_weight, self.conv_bias, self.dt_bias, self.A_log, self.D, self.norm_weight, self.out_proj.weight
        )

    def forward(self, hidden: torch.Tensor, geom: Geometry) -> torch.Tensor:
        return mixer_k.mamba2_mixer(
            self.in_proj(hidden), self.weights(), self.dims, geom.positions, geom.starts, geom.has_resets
        )

    def forward_from(
        self, hidden: torch.Tensor, valid: torch.Tensor, state: MambaState
    ) -> tuple[torch.Tensor, MambaState]:
        """hidden (B, L, D) continuing ``state`` (right-padded rows, ``valid`` marks real tokens): the forward's
        chunked arithmetic with the conv history prepended and the scan started from the carried state. The
        returned state is each row's after its last real token (padding has step size 0, so it moves nothing)."""
        dims, k = self.dims, self.cfg.d_conv
        z, xbc, dt = mixer_k.split_projection(self.in_proj(hidden), dims)
        history = state.conv.transpose(1, 2).to(xbc.dtype)  # (B, K, C): the last K conv inputs
        extended = torch.cat([history, xbc], dim=1)
        conv = conv_k.causal_conv1d(extended[:, 1:], self.conv_weight, self.conv_bias, activation="silu")[:, k - 1 :]
        at = (valid.sum(1)[:, None] + torch.arange(k, device=hidden.device)[None])[..., None]
        conv_state = torch.gather(extended, 1, at.expand(-1, -1, extended.shape[-1])).transpose(1, 2)
        x, Bm, Cm = mixer_k.split_heads(conv, dims)
        dt = F.softplus(dt.float() + self.dt_bias.float()) * valid[..., None]
        y, ssm_state = ssd_k.ssd_scan_chunked(
            x,
            dt,
            -torch.exp(self.A_log.float()),
            Bm,
            Cm,
            chunk_size=dims.chunk_size,
            initial_state=state.ssm,
            return_final_state=True,
            D=self.D,
        )
        y = norm_k.gated_rms_norm(
            rearrange(y, "... h p -> ... (h p)"), z, self.norm_weight, self.eps, group_size=dims.d_inner // dims.ngroups
        )
        return self.out_proj(y), MambaState(conv_state.to(state.conv.dtype).contiguous(), ssm_state)

    def init_state(self, batch: int, device, dtype) -> MambaState:
        return MambaState(
            conv=torch.zeros(batch, self.conv_dim, self.cfg.d_conv, device=device, dtype=dtype),
            ssm=torch.zeros(
                batch, self.nheads, self.cfg.head_dim, self.cfg.d_state, device=device, dtype=torch.float32
            ),
        )

    def step(self, hidden: torch.Tensor, state: MambaState) -> tuple[torch.Tensor, MambaState]:
        """hidden (B, D) -> (B, D) for one new token: the forward's arithmetic on one position."""
        dims = self.dims
        z, xbc, dt = mixer_k.split_projection(self.in_proj(hidden), dims)
        xbc, conv_state = conv_k.causal_conv1d_step(state.conv, xbc, self.conv_weight, self.conv_bias)
        x, Bm, Cm = mixer_k.split_heads(F.silu(xbc), dims)
        dt = F.softplus(dt.float() + self.dt_bias.float())
        y, ssm_state = ssd_k.ssd_step(state.ssm, x, dt, -torch.exp(self.A_log.float()), Bm, Cm)
        y = (y.float() + x.float() * self.D.float()[:, None]).to(x.dtype)
        y = norm_k.gated_rms_norm(
            rearrange(y, "... h p -> ... (h p)"),
            z,
            self.norm_weight,
            self.eps,
            group_size=self.d_inner // self.cfg.ngroups,
        )
        return self.out_proj(y), MambaState(conv_state, ssm_state)
