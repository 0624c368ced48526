"""Where sequences live inside a batch tensor, for both layouts.

Padded: (B, L) with a right-padding mask, one sequence per row. Packed: (1, T) holding several sequences
back to back, delimited by ``cu_seqlens``. Chunking shortens every sequence by a different amount, so each
stage derives the geometry of the next one from its boundary mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Geometry:
    valid: torch.Tensor  # (B, L) bool: real tokens
    seq_idx: torch.Tensor  # (B, L) long: which sequence of the row a token belongs to
    positions: torch.Tensor  # (B, L) long: index of the token inside its sequence
    starts: torch.Tensor  # (B, L) bool: first token of a sequence
    cu_seqlens: torch.Tensor | None = None  # packed layout only

    @property
    def packed(self) -> bool:
        return self.cu_seqlens is not None

    @property
    def has_resets(self) -> bool:
        """True when some sequence starts mid-row (packed), so mixers must stop state at boundaries."""
        return self.cu_seqlens is not None and self.cu_seqlens.numel() > 2

    @staticmethod
    def padded(mask: torch.Tensor) -> Geometry:
        b, l = mask.shape
        pos = torch.arange(l, device=mask.device).expand(b, l)
        return Geometry(valid=mask, seq_idx=torch.zeros_like(pos), positions=pos, starts=pos == 0)

    @staticmethod
    def from_cu_seqlens(cu_seqlens: torch.Tensor, total: int) -> Geometry:
        cu = cu_seqlens.to(torch.long)
        lengths = cu[1:] - cu[:-1]
        seq_idx = torch.repeat_interleave(torch.arange(len(lengths), device=cu.device), lengths)
        if seq_idx.numel() != total:
            raise ValueError(f"cu_seqlens covers {seq_idx.numel()} tokens but the packed batch has {total}")
        pos = torch.arange(total, device=cu.device) - cu[:-1][seq_idx]
        return Geometry(
            valid=torch.ones(1, total, dtype=torch.bool, device=cu.device),
            seq_idx=seq_idx[None],
            positions=pos[None],
            starts=(pos == 0)[None],
            cu_seqlens=cu_seqlens.to(torch.int32),
        )

    def downsample(self, boundary: torch.Tensor) -> tuple[Geometry, torch.Tensor]:
        """Geometry of the chunk sequence and the gather index (B, L') of chunk-start positions.

        Chunks keep their order, so inner rows are left-aligned: padded rows get a new right-padding mask,
        packed rows get new ``cu_seqlens`` from per-sequence boundary counts.
        """
        sel = boundary & self.valid
        if self.cu_seqlens is not None:  # packed
            counts = torch.zeros(len(self.cu_seqlens) - 1, dtype=torch.long, device=sel.device)
            counts.index_add_(0, self.seq_idx[0], sel[0].long())
            cu = torch.nn.functional.pad(torch.cumsum(counts, 0), (1, 0))
            index = torch.nonzero(sel[0], as_tuple=False)[:, 0][None]
            return Geometry.from_cu_seqlens(cu, int(cu[-1])), index
        counts = sel.sum(1)
        width = max(int(counts.max()), 1) if counts.numel() else 1
        # stable sort puts selected positions first, in their original order
        order = torch.argsort((~sel).to(torch.int8), dim=1, stable=True)
        index = order[:, :width]
        mask = torch.arange(width, device=sel.device)[None] < counts[:, None]
        return Geometry.padded(mask), index
