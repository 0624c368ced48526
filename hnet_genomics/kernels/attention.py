"""Causal attention over padded or packed batches: a naive softmax reference and the SDPA path.

Sequences are described by ``seq_idx`` (B, L): a key is visible to a query if it belongs to the same
sequence, is not in the future and lies inside the sliding window. A window of ``w`` (flash-attn's
``window_size=(w, 0)``) lets each query see itself and the ``w`` keys before it, ``w + 1`` in all; ``w <= 0``
is full causal attention. Masks are boolean, never additive floats.

The SDPA path never builds an (L, L) mask over a packed row: each run of one sequence is attended on its own,
runs of similar length batched together (so padding at most doubles the work), and long windowed runs are
attended block by block. Which runs go together is decided on the host from ``Runs.offsets`` (the packed
geometry's ``cu_seqlens``, which the model already holds there), so attending a packed row never waits for
the device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from hnet_genomics.kernels import dispatch

DENSE_WINDOW_MASK_MAX = 4096  # up to this run length a windowed run uses one shared (L, L) boolean mask


def visibility_mask(seq_idx: torch.Tensor, window: int = -1) -> torch.Tensor:
    """(B, L) -> (B, 1, L, L) bool, True where query i may attend key j."""
    l = seq_idx.shape[1]
    i = torch.arange(l, device=seq_idx.device)
    allowed = i[None, :] <= i[:, None]
    if window > 0:
        allowed = allowed & (i[:, None] - i[None, :] <= window)
    same = seq_idx[:, :, None] == seq_idx[:, None, :]
    return (allowed[None] & same)[:, None]


def attention_ref(q, k, v, seq_idx, window: int = -1):
    """q, k, v (B, H, L, Dh). Explicit masked softmax in fp32."""
    scores = torch.einsum("bhid,bhjd->bhij", q.float(), k.float()) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~visibility_mask(seq_idx, window), float("-inf"))
    return torch.einsum("bhij,bhjd->bhid", scores.softmax(-1), v.float()).to(q.dtype)


@dataclass(frozen=True)
class Runs:
    """Runs of one sequence in the flattened (B * L) rows: offsets on the device (int32) and on the host."""

    cu: torch.Tensor  # (runs + 1,) int32
    offsets: tuple[int, ...]  # the same, as host integers

    @property
    def longest(self) -> int:
        return max((b - a for a, b in zip(self.offsets, self.offsets[1:])), default=0)


def run_boundaries(seq_idx: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Flattened (B, L) rows -> (cu_seqlens int32, longest run): a new run at each row start or seq change.
    Reads the device (``nonzero``): for callers that hold no ``Runs``."""
    starts = torch.ones_like(seq_idx, dtype=torch.bool)
    starts[:, 1:] = seq_idx[:, 1:] != seq_idx[:, :-1]
    flat = starts.reshape(-1)
    cu = F.pad(torch.nonzero(flat)[:, 0], (0, 1), value=flat.numel()).to(torch.int32)
    return cu, int((cu[1:] - cu[:-1]).max())


def runs_of(seq_idx: torch.Tensor, runs: Runs | None) -> Runs:
    if runs is not None:
        return runs
    cu, _ = run_boundaries(seq_idx)
    return Runs(cu, tuple(cu.tolist()))


def host_to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A small host-built index on ``device`` without waiting: pinned, then copied asynchronously on CUDA."""
    tensor = torch.from_numpy(array)
    if device.type != "cuda":
        return tensor
    return tensor.pin_memory().to(device, non_blocking=True)


def _band_mask(rows: int, cols: int, offset: int, window: int, device) -> torch.Tensor:
    """(rows, cols) bool: query r sits at key column r + offset and sees columns within ``window`` before it."""
    gap = torch.arange(rows, device=device)[:, None] + offset - torch.arange(cols, device=device)[None, :]
    return (gap >= 0) & (gap <= window)


def causal_sdpa(q, k, v, window: int = -1):
    """Causal (optionally windowed) SDPA over rows that each hold one sequence from position 0.

    A padded tail is harmless: a real query never sees a later position.
    """
    length = q.shape[-2]
    if window <= 0 or window + 1 >= length:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    if length <= DENSE_WINDOW_MASK_MAX:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=_band_mask(length, length, 0, window, q.device))
    return _blocked_window_sdpa(q, k, v, window)


def _blocked_window_sdpa(q, k, v, window: int):
    """Blocks of S >= window queries attend to their own and the previous block's keys: (S, 2S) per block."""
    *lead, length, d = q.shape
    s = max(window, 256)
    pad = (-length) % s
    q, k, v = (F.pad(t, (0, 0, 0, pad)) for t in (q, k, v))
    n = q.shape[-2] // s
    qb, kb, vb = (t.reshape(*lead, n, s, d) for t in (q, k, v))
    first = F.scaled_dot_product_attention(
        qb[..., 0, :, :], kb[..., 0, :, :], vb[..., 0, :, :], attn_mask=_band_mask(s, s, 0, window, q.device)
    )
    out = [first[..., None, :, :]]
    if n > 1:
        k2 = torch.cat([kb[..., :-1, :, :], kb[..., 1:, :, :]], dim=-2)  # previous block, then this one
        v2 = torch.cat([vb[..., :-1, :, :], vb[..., 1:, :, :]], dim=-2)
        rest = F.scaled_dot_product_attention(
            qb[..., 1:, :, :], k2, v2, attn_mask=_band_mask(s, 2 * s, s, window, q.device)
        )
        out.append(rest)
    return torch.cat(out, dim=-3).reshape(*lead, n * s, d)[..., :length, :]


def segment_attention(q, k, v, seq_idx, window: int = -1, runs: Runs | None = None):
    """Causal attention inside each run of equal ``seq_idx`` without an (L, L) mask.

    Runs are grouped by length class (a power of two), gathered into one padded batch per class and attended
    with ``causal_sdpa``; the padded batch holds at most twice the tokens of the row. The grouping and the
    gather and scatter indices are built on the host from ``runs`` (read from ``seq_idx`` when not given).
    """
    b, h, l, d = q.shape
    offsets = np.asarray(runs_of(seq_idx, runs).offsets, dtype=np.int64)
    starts, lengths = offsets[:-1], np.diff(offsets)
    flat = [t.transpose(1, 2).reshape(b * l, h, d) for t in (q, k, v)]
    out = torch.zeros_like(flat[0])
    length_class = np.ceil(np.log2(np.maximum(lengths, 1))).astype(np.int64)
    for c in np.unique(length_class):
        members = np.flatnonzero(length_class == c)
        width = int(lengths[members].max())
        offs = np.arange(width)[None, :]
        index = starts[members, None] + np.minimum(offs, lengths[members, None] - 1)
        real = offs < lengths[members, None]
        gather = host_to_device(index, q.device)
        keep = host_to_device(np.flatnonzero(real), q.device)  # which (run, offset) cells are real tokens
        dest = host_to_device(index[real], q.device)
        qs, ks, vs = (t[gather].transpose(1, 2) for t in flat)  # (runs, H, width, Dh)
        attended = causal_sdpa(qs, ks, vs, window).transpose(1, 2).reshape(-1, h, d)
        out = out.index_put((dest,), attended.index_select(0, keep))
    return out.view(b, l, h, d).transpose(1, 2)


def attention(q, k, v, seq_idx, window: int = -1, single_sequence_rows: bool = True, runs: Runs | None = None):
    """flash-attn on CUDA when it loads (and takes the dtype and head size); else SDPA over each sequence.
    ``runs``: the sequences of a packed row, known on the host (``seq_idx`` is read when they are not)."""
    fast = dispatch.gpu_kernel("attention", q)
    if fast is not None and (out := fast(q, k, v, seq_idx, window, single_sequence_rows, runs)) is not None:
        return out
    if single_sequence_rows:
        return causal_sdpa(q, k, v, window)
    return segment_attention(q, k, v, seq_idx, window, runs)
