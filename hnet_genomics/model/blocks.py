"""Pre-norm residual blocks (residual stream kept in fp32), SwiGLU MLP, RMSNorm."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hnet_genomics.config import ModelConfig
from hnet_genomics.kernels import norm as norm_k
from hnet_genomics.layout import BlockSpec
from hnet_genomics.model.attention import CausalSelfAttention
from hnet_genomics.model.geometry import Geometry
from hnet_genomics.model.mamba2 import Mamba2


class RMSNorm(nn.Module):
    def __init__(self, d: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return norm_k.rms_norm(x, self.weight, self.eps)


class SwiGLU(nn.Module):
    def __init__(self, d_model: int, d_intermediate: int):
        super().__init__()
        self.fc1 = nn.Linear(d_model, 2 * d_intermediate, bias=False)
        self.fc2 = nn.Linear(d_intermediate, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.fc1(x).chunk(2, dim=-1)
        return self.fc2(F.silu(a) * b)


class ResidualBlock(nn.Module):
    """x <- x + mixer(norm(x)); x <- x + mlp(norm(x)). ``residual`` is the fp32 stream."""

    def __init__(self, spec: BlockSpec, stage: int, cfg: ModelConfig):
        super().__init__()
        d = cfg.d_model[stage]
        self.spec = spec
        self.norm1 = RMSNorm(d, cfg.norm_eps)
        self.mixer: Mamba2 | CausalSelfAttention
        if spec.kind == "m":
            self.mixer = Mamba2(d, cfg.ssm, cfg.norm_eps)
        else:
            self.mixer = CausalSelfAttention(
                d, cfg.attn.num_heads[stage], cfg.attn.rotary_dim[stage], cfg.attn.window_size[stage]
            )
        self.norm2 = RMSNorm(d, cfg.norm_eps) if spec.mlp else None
        self.mlp = SwiGLU(d, cfg.d_intermediate[stage]) if spec.mlp else None

    def residual_outputs(self) -> list[nn.Linear]:
        """The projections that write into the residual stream: the mixer's, then the MLP's."""
        return [self.mixer.out_proj] + ([self.mlp.fc2] if self.mlp is not None else [])

    def forward(self, residual: torch.Tensor, geom: Geometry) -> torch.Tensor:
        dtype = self.norm1.weight.dtype
        residual = residual + self.mixer(self.norm1(residual.to(dtype)), geom).float()
        if self.mlp is not None and self.norm2 is not None:  # built together
            residual = residual + self.mlp(self.norm2(residual.to(dtype))).float()
        return residual

    def forward_from(self, residual: torch.Tensor, valid: torch.Tensor, state):
        """``forward`` continuing the mixer's inference state (``Mamba2`` / ``CausalSelfAttention.forward_from``)."""
        dtype = self.norm1.weight.dtype
        out, state = self.mixer.forward_from(self.norm1(residual.to(dtype)), valid, state)
        residual = residual + out.float()
        if self.mlp is not None and self.norm2 is not None:  # built together
            residual = residual + self.mlp(self.norm2(residual.to(dtype))).float()
        return residual, state

    def init_state(self, batch, device, dtype):
        return self.mixer.init_state(batch, device, dtype)

    def step(self, residual: torch.Tensor, state):
        dtype = self.norm1.weight.dtype
        out, state = self.mixer.step(self.norm1(residual.to(dtype)), state)
        residual = residual + out.float()
        if self.mlp is not None and self.norm2 is not None:  # built together
            residual = residual + self.mlp(self.norm2(residual.to(dtype))).float()
        return residual, state
