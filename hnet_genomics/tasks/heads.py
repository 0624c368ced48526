"""Task heads on top of any backbone of the package (H-Net or isotropic baseline).

Pooling choices for sequence-level tasks:

- ``mean``: mean of the final base-level hidden states over real bases only, so padding (and whatever bytes
  it holds) cannot move the prediction;
- ``last``: the hidden state of the last real base, which in a causal model is the only one that has read
  the whole sequence;
- ``chunk``: mean of the main network's outputs over the stage-1 chunks, H-Net's own learned units
  (needs an H-Net; isotropic baselines have no chunks).

A frozen backbone (linear probe) runs without gradients and in eval mode, so its features are a fixed
function of the sequence and can be computed once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
from torch import nn

from hnet_genomics.errors import ConfigError

if TYPE_CHECKING:
    from hnet_genomics.model.lm import HNetLM

Pooling = Literal["mean", "last", "chunk"]
POOLINGS: tuple[str, ...] = ("mean", "last", "chunk")


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, L, D) x (B, L) bool -> (B, D) mean over the True positions of each row."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)


def last_real(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, L, D) -> (B, D) hidden state at each row's last True position (right-padded rows)."""
    last = mask.long().sum(dim=1).clamp(min=1) - 1
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


def pool(out, mask: torch.Tensor, pooling: Pooling) -> torch.Tensor:
    """Sequence vector from a backbone output (``hidden_states``, ``chunk_hidden``, ``level_masks``)."""
    if pooling == "mean":
        return masked_mean(out.hidden_states, mask)
    if pooling == "last":
        return last_real(out.hidden_states, mask)
    if out.chunk_hidden is None:
        raise ConfigError("pooling 'chunk' needs an H-Net backbone; this model is isotropic (use mean or last)")
    return masked_mean(out.chunk_hidden, out.level_masks[1])


def pooled_dim(model_config, pooling: Pooling) -> int:
    """Width of the pooled vector: base-level d_model, or the main network's for chunk pooling."""
    if pooling not in POOLINGS:
        raise ConfigError(f"unknown pooling '{pooling}' (choose from {', '.join(POOLINGS)})")
    if pooling == "chunk":
        if model_config.num_stages < 1:
            raise ConfigError("pooling 'chunk' needs an H-Net backbone; this model is isotropic (use mean or last)")
        return model_config.d_model[1]
    return model_config.d_model[0]


class SequenceClassifier(nn.Module):
    """Backbone + pooling + linear layer; ``num_outputs`` classes (or 1 for regression)."""

    def __init__(
        self,
        backbone: HNetLM,
        num_outputs: int,
        pooling: Pooling = "mean",
        freeze_backbone: bool = False,
        ratio_loss_weight: float = 0.03,
    ):
        super().__init__()
        self.backbone, self.pooling, self.freeze_backbone = backbone, pooling, freeze_backbone
        self.ratio_loss_weight = ratio_loss_weight
        self.head = nn.Linear(pooled_dim(backbone.config, pooling), num_outputs)
        if freeze_backbone:
            backbone.requires_grad_(False)

    def train(self, mode: bool = True) -> SequenceClassifier:
        super().train(mode)
        if self.freeze_backbone:
            self.backbone.eval()
        return self

    def features(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.features_and_aux_loss(input_ids, mask)[0]

    def features_and_aux_loss(self, input_ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pooled vector and the weighted ratio loss, which keeps a fine-tuned H-Net at its target compression."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_backbone):
            out = self.backbone(input_ids, mask=mask)
            aux = out.ratio_loss * self.ratio_loss_weight
            return pool(out, mask, self.pooling), aux

    def forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(input_ids, mask))
