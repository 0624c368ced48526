"""Next-base cross-entropy over real targets, and bits per base."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def target_weights(batch: dict) -> torch.Tensor:
    """(B, L-1) bool: which next-base targets count.

    A target counts if it is a real base (not padding), not masked by the N policy, and (packed layout) it
    belongs to the same sequence as its context, i.e. it is not the first base of a sequence.
    """
    keep = batch["mask"][:, 1:] & batch["loss_mask"][:, 1:]
    if "cu_seqlens" in batch:
        starts = torch.zeros_like(batch["mask"])
        starts[0, batch["cu_seqlens"][:-1].long()] = True
        keep = keep & ~starts[:, 1:]
    return keep


def next_base_nll(
    logits: torch.Tensor, input_ids: torch.Tensor, weights: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed negative log-likelihood in nats over counted targets, and their number."""
    nll = F.cross_entropy(
        logits[:, :-1].float().reshape(-1, logits.shape[-1]), input_ids[:, 1:].reshape(-1), reduction="none"
    ).view_as(weights)
    w = weights.float()
    return (nll * w).sum(), w.sum()


def bits_per_base(nll_sum: float, count: float) -> float:
    return nll_sum / max(count, 1.0) / math.log(2)
