"""What the engine reads out of a batch: boundary decisions, per-base log-likelihoods, chunk positions.

Each readout takes ``(model, ids, mask)`` for a right-padded batch and returns one CPU result per row.
Positions of chunking level s map to bases as follows: the j-th position of level s sits at the base of the
j-th level s-1 boundary (level 0 positions are bases), so a level-s decision is reported at that base.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from hnet_genomics.inference.engine import rows

if TYPE_CHECKING:
    from hnet_genomics.model.lm import HNetLM

LOG2E = 1 / math.log(2)
UNAMBIGUOUS = torch.tensor(list(b"ACGTacgt"))


@torch.inference_mode()
def routing_pass(
    model: HNetLM, ids: torch.Tensor, mask: torch.Tensor
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(boundary, p, valid) per chunking level from the model's routing-only pass (``HNetLM.route``);
    ``test_routing_pass_matches_full_forward`` pins it to the model's own ``forward``."""
    return model.route(ids, mask)


def level_bases(
    levels: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], batch: int, length: int, device
) -> list[torch.Tensor]:
    """For level 0 (bases) and the chunk sequence of every chunking level, the (B, L_s) base index of each
    position (0 where the position is padding): S + 1 tensors for S levels."""
    pos = torch.arange(length, device=device).expand(batch, length)
    out = [pos]
    for bm, _, valid in levels:
        bm = bm & valid
        width = max(int(bm.sum(1).max()), 1) if bm.numel() else 1  # as Geometry.downsample sizes the level
        r, c = bm.nonzero(as_tuple=True)
        nxt = torch.zeros(batch, width, dtype=torch.long, device=device)
        nxt[r, (bm.long().cumsum(1) - 1)[r, c]] = pos[r, c]
        pos = nxt
        out.append(pos)
    return out


def decisions_at_bases(
    levels: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], batch: int, length: int, device
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per level, (B, L) boundary masks and probabilities at base resolution (0 where a level has no position)."""
    bounds, probs = [], []
    for (bm, bp, valid), pos in zip(levels, level_bases(levels, batch, length, device)):
        bm = bm & valid
        b_base = torch.zeros(batch, length, dtype=torch.bool, device=device)
        p_base = torch.zeros(batch, length, dtype=torch.float32, device=device)
        r, c = valid.nonzero(as_tuple=True)
        p_base[r, pos[r, c]] = bp[r, c].float()
        r, c = bm.nonzero(as_tuple=True)
        b_base[r, pos[r, c]] = True
        bounds.append(b_base)
        probs.append(p_base)
    return bounds, probs


@torch.inference_mode()
def base_level_decisions(
    model: HNetLM, ids: torch.Tensor, mask: torch.Tensor
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per stage, (B, L) boundary masks and probabilities at base resolution, from the routing-only pass."""
    batch, length = ids.shape
    return decisions_at_bases(routing_pass(model, ids, mask), batch, length, ids.device)


def decisions(model: HNetLM, ids: torch.Tensor, mask: torch.Tensor) -> list[list]:
    """Readout: per row, ``[stage-1 boundaries, ..., stage-S boundaries, stage-1 p, ..., stage-S p]``."""
    bounds, probs = base_level_decisions(model, ids, mask)
    return rows(bounds + probs, mask)


def forward_levels(out) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(boundary, p, valid) per chunking level from a full forward's ``LMOutput``, as ``route`` gives them."""
    return list(zip(out.boundary_masks, out.boundary_probs, out.level_masks[:-1]))


def token_log_probs(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """(B, L) natural-log probability of each byte given the bytes before it; NaN at position 0 (unpredicted)."""
    lp = torch.log_softmax(logits[:, :-1].float(), dim=-1).gather(-1, ids[:, 1:, None])[..., 0]
    return torch.nn.functional.pad(lp, (1, 0), value=float("nan"))


def log_probs(model: HNetLM, ids: torch.Tensor, mask: torch.Tensor) -> list[list]:
    """Readout: per row, ``[log p(x_t | x_<t) in nats (NaN at t = 0), stage-1 boundary at each base]``
    (the boundary array is all False for an isotropic model)."""
    out = model(ids, mask=mask)
    lp = token_log_probs(out.logits, ids)
    if out.boundary_masks:
        batch, length = ids.shape
        b1 = decisions_at_bases(forward_levels(out)[:1], batch, length, ids.device)[0][0]
    else:
        b1 = torch.zeros_like(mask)
    return rows([lp, b1], mask)


def bits(model: HNetLM, ids: torch.Tensor, mask: torch.Tensor) -> list[list]:
    """Readout: per row, ``[surprisal -log2 p(x_t | x_<t) in bits]``, NaN at t = 0 (unpredicted) and where
    x_t is not A, C, G or T (the surprisal of an N says nothing about the genome)."""
    out = model(ids, mask=mask)
    values = token_log_probs(out.logits, ids) * -LOG2E
    return rows([values.masked_fill(~torch.isin(ids, UNAMBIGUOUS.to(ids.device)), float("nan"))], mask)
