"""Pre-norm residual blocks (residual stream kept in fp32), SwiGLU MLP, RMSNorm.

A block hands the next one its branch output and the residual stream unsummed: the next norm adds them and
normalises in one kernel (``kernels.norm.add_rms_norm``), as the reference H-Net's blocks do, so the sum is
neither written nor read separately and the branch output stays in its own (under autocast, bf16) dtype.
"""

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

    def add_and_norm(
        self, x: torch.Tensor, residual: torch.Tensor | None, out_dtype: torch.dtype | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(norm(residual + x) in ``out_dtype`` (x's by default), residual + x in fp32)."""
        normed, total = norm_k.add_rms_norm(x, residual, self.weight, self.eps, out_dtype)
        assert total is not None  # kept unless asked otherwise
        return normed, total

    def add_and_norm_last(self, x: torch.Tensor, residual: torch.Tensor | None, out_dtype: torch.dtype) -> torch.Tensor:
        """norm(residual + x) in ``out_dtype``, where the residual stream ends."""
        return norm_k.add_rms_norm(x, residual, self.weight, self.eps, out_dtype, keep_residual=False)[0]


class SwiGLU(nn.Module):
    def __init__(self, d_model: int, d_intermediate: int):
        super().__init__()
        self.fc1 = nn.Linear(d_model, 2 * d_intermediate, bias=False)
        self.fc2 = nn.Linear(d_intermediate, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.fc1(x).chunk(2, dim=-1)
        return self.fc2(F.silu(a) * b)


class ResidualBlock(nn.Module):
    """residual += x; x = mixer(norm(residual)); then, with an MLP, residual += x; x = mlp(norm(residual)).

    Takes and returns (x, residual): the branch output not yet added and the fp32 residual stream (None
    before the first block, whose x is the stack's input).
    """

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

    def forward(
        self, x: torch.Tensor, residual: torch.Tensor | None, geom: Geometry
    ) -> tuple[torch.Tensor, torch.Tensor]:
        h, residual = self.norm1.add_and_norm(x, residual)
        x = self.mixer(h, geom)
        if self.mlp is not None and self.norm2 is not None:  # built together
            h, residual = self.norm2.add_and_norm(x, residual)
            x = self.mlp(h)
        return x, residual

    def forward_from(self, x: torch.Tensor, residual: torch.Tensor | None, valid: torch.Tensor, state):
        """``forward`` continuing the mixer's inference state (``Mamba2`` / ``CausalSelfAttention.forward_from``)."""
        h, residual = self.norm1.add_and_norm(x, residual)
        x, state = self.mixer.forward_from(h, valid, state)
        if self.mlp is not None and self.norm2 is not None:  # built together
            h, residual = self.norm2.add_and_norm(x, residual)
            x = self.mlp(h)
        return x, residual, state

    def init_state(self, batch, device, dtype):
        return self.mixer.init_state(batch, device, dtype)

    def step(self, x: torch.Tensor, residual: torch.Tensor | None, state):
        h, residual = self.norm1.add_and_norm(x, residual)
        x, state = self.mixer.step(h, state)
        if self.mlp is not None and self.norm2 is not None:  # built together
            h, residual = self.norm2.add_and_norm(x, residual)
            x = self.mlp(h)
        return x, residual, state
