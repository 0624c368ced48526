"""Where sequences live inside a batch tensor, for both layouts.

Padded: (B, L) with a right-padding mask, one sequence per row. Packed: (1, T) holding several sequences
back to back, delimited by ``cu_seqlens``. Chunking shortens every sequence by a different amount, so each
stage derives the geometry of the next one from its boundary mask.

Nothing here waits for the device except where a shape depends on data and nobody said how wide to make it:
a padded level given a ``width`` (``hnet.ChunkCapacity``) reads nothing, a packed level reads its chunk
counts once (``cu_seqlens`` of the chunk sequence, which also serves attention over that stage).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class Geometry:
    valid: torch.Tensor  # (B, L) bool: real tokens
    seq_idx: torch.Tensor  # (B, L) long: which sequence of the row a token belongs to
    positions: torch.Tensor  # (B, L) long: index of the token inside its sequence
    starts: torch.Tensor  # (B, L) bool: first token of a sequence
    cu_seqlens: torch.Tensor | None = None  # packed layout only
    host_cu: tuple[int, ...] | None = None  # packed: cu_seqlens as host integers

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
    def from_cu_seqlens(cu_seqlens: torch.Tensor, total: int, host_cu: tuple[int, ...] | None = None) -> Geometry:
        """``host_cu``: the same offsets as host integers when the caller has them. Without them a CPU
        ``cu_seqlens`` is read for free and a device one once (the shapes below depend on them, and a wrong
        total must be refused before a kernel writes out of bounds)."""
        if host_cu is None:
            on_host = cu_seqlens.device.type == "cpu"
            host_cu = tuple(int(v) for v in (cu_seqlens.numpy() if on_host else cu_seqlens.tolist()))
        if host_cu[-1] != total:
            raise ValueError(f"cu_seqlens covers {host_cu[-1]} tokens but the packed batch has {total}")
        cu = cu_seqlens.to(torch.long)
        lengths = cu[1:] - cu[:-1]
        seq_idx = torch.repeat_interleave(torch.arange(len(lengths), device=cu.device), lengths, output_size=total)
        pos = torch.arange(total, device=cu.device) - cu[:-1][seq_idx]
        return Geometry(
            valid=torch.ones(1, total, dtype=torch.bool, device=cu.device),
            seq_idx=seq_idx[None],
            positions=pos[None],
            starts=(pos == 0)[None],
            cu_seqlens=cu_seqlens.to(torch.int32),
            host_cu=host_cu,
        )

    def downsample(self, boundary: torch.Tensor, width: int | None = None) -> Downsampled:
        """The chunk sequence that ``boundary`` opens: its geometry, the gather index of chunk starts and the
        chunk each position belongs to.

        Chunks keep their order, so inner rows are left-aligned: padded rows get a new right-padding mask of
        ``width`` columns (the longest row's count when ``None``, read from the device), packed rows new
        ``cu_seqlens`` from per-sequence counts (read once). Beyond a row's count the index points at
        arbitrary positions of that row: padding, which no real output reads (everything is causal).
        A ``width`` below the longest row's count leaves chunks out; ``Downsampled.longest`` says so.
        """
        sel = boundary & self.valid
        ends = sel.cumsum(1)  # chunks opened up to and including each position
        if self.cu_seqlens is not None:  # packed: one row; the count at each sequence end is its cu_seqlens
            last = self.cu_seqlens[1:].to(torch.long) - 1
            cu = F.pad(ends[0, last], (1, 0))
            host = tuple(cu.tolist())  # the one read of this stage: the chunk sequence's shape
            total = host[-1]
            index, chunk_of = _chunk_index(sel, ends, total)
            inner = Geometry.from_cu_seqlens(cu.to(torch.int32), total, host_cu=host)
            return Downsampled(inner, index, chunk_of, ends[:, -1])
        counts = ends[:, -1]
        if width is None:
            width = max(int(counts.max()), 1) if counts.numel() else 1
        index, chunk_of = _chunk_index(sel, ends, width)
        mask = torch.arange(width, device=sel.device)[None] < counts[:, None]
        return Downsampled(Geometry.padded(mask), index, chunk_of, counts.max())


@dataclass
class Downsampled:
    geom: Geometry  # of the chunk sequence
    index: torch.Tensor  # (B, W) position of each chunk start
    chunk_of: torch.Tensor  # (B, L) chunk of each position (clamped into [0, W - 1])
    longest: torch.Tensor  # () the largest count of a row (packed: of the row, i.e. all chunks)


def _chunk_index(sel: torch.Tensor, ends: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gather index (B, width) of the selected positions, in order, and each position's chunk (B, L).

    Every selected position scatters its own index into its chunk's slot; slot ``width`` catches what does
    not fit (and nothing is read from it), so the result never depends on which of several writers wins.
    """
    b, l = sel.shape
    slot = ends - 1
    chunk_of = slot.clamp(0, max(width - 1, 0))
    dest = torch.where(sel, slot, width).clamp_(max=width)
    index = torch.zeros(b, width + 1, dtype=torch.long, device=sel.device)
    index.scatter_(1, dest, torch.arange(l, device=sel.device).expand(b, l))
    return index[:, :width], chunk_of
