"""A flat stack of blocks with a final RMSNorm: H-Net encoders, decoders, main networks and the baselines."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import cast

import torch
from torch import nn

from hnet_genomics.config import ModelConfig
from hnet_genomics.layout import BlockSpec
from hnet_genomics.model.blocks import ResidualBlock, RMSNorm
from hnet_genomics.model.cache import BlockStates
from hnet_genomics.model.geometry import Geometry


class BlockStack(nn.Module):
    """Blocks and final norm of a stack; ``run`` is its pass over a sequence. ``Isotropic`` answers with that
    alone, the innermost network of an H-Net (``hnet.Innermost``) also with the levels it chunks (none)."""

    def __init__(self, specs: list[BlockSpec], stage: int, cfg: ModelConfig):
        super().__init__()
        self.stage = stage
        self.blocks = nn.ModuleList(ResidualBlock(s, stage, cfg) for s in specs)
        self.norm = RMSNorm(cfg.d_model[stage], cfg.norm_eps)

    @property
    def residual_blocks(self) -> Iterable[ResidualBlock]:
        return cast("Iterable[ResidualBlock]", self.blocks)  # nn.ModuleList is not generic over its modules

    @property
    def residual_layers(self) -> int:
        """Additions to the residual stream: one per mixer, one more per MLP."""
        return sum(len(b.residual_outputs()) for b in self.residual_blocks)

    @torch.no_grad()
    def init_residual_outputs(self, std: float, layers: int) -> None:
        """Every residual-branch output projection ~ N(0, std / sqrt(layers))."""
        for block in self.residual_blocks:
            for proj in block.residual_outputs():
                nn.init.normal_(proj.weight, std=std / math.sqrt(layers))

    def scale_residual_outputs(self, std: float, outer_layers: int = 0) -> None:
        """As the innermost (or only) network: its own residual layers plus ``outer_layers`` count."""
        self.init_residual_outputs(std, outer_layers + self.residual_layers)

    def run(self, hidden: torch.Tensor, geom: Geometry) -> torch.Tensor:
        x, residual = hidden, None
        for block in self.residual_blocks:
            x, residual = block(x, residual, geom)
        return self.norm.add_and_norm_last(x, residual, hidden.dtype)

    def run_from(
        self, hidden: torch.Tensor, valid: torch.Tensor, states: BlockStates
    ) -> tuple[torch.Tensor, BlockStates]:
        """``run`` over right-padded rows that continue ``states``; returns each row's state after its last
        real token."""
        x, residual = hidden, None
        new_states: BlockStates = []
        for block, st in zip(self.residual_blocks, states):
            x, residual, st = block.forward_from(x, residual, valid, st)
            new_states.append(st)
        return self.norm.add_and_norm_last(x, residual, hidden.dtype), new_states

    def init_state(self, batch, device, dtype) -> BlockStates:
        return [b.init_state(batch, device, dtype) for b in self.residual_blocks]

    def step(self, hidden: torch.Tensor, states: BlockStates) -> tuple[torch.Tensor, BlockStates]:
        x, residual = hidden, None
        new_states: BlockStates = []
        for block, st in zip(self.residual_blocks, states):
            x, residual, st = block.step(x, residual, st)
            new_states.append(st)
        return self.norm.add_and_norm_last(x, residual, hidden.dtype), new_states


class Isotropic(BlockStack):
    def forward(self, hidden: torch.Tensor, geom: Geometry) -> torch.Tensor:
        return self.run(hidden, geom)
