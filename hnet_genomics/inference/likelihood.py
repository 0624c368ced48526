"""Per-base surprisal along a genome, stitched across windows like the boundary decisions.

A base's forward value is ``-log2 p(x_t | bases to its left)`` from the window that gives it the most left
context (``windows.plan_windows``); its reverse value is the surprisal of its complement given the reverse
complement of the bases to its right, from the window that gives it the most right context
(``windows.reverse_keep_ends``), so both come from one pass over the same windows. ``mean`` averages the
two, or takes the one that exists: a region's first base has no forward value (nothing precedes it in the
region) and its last base no reverse value. Bases that are not A, C, G or T (N and other ambiguity codes)
have no value on either strand.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from hnet_genomics.config import DataConfig
from hnet_genomics.errors import ConfigError
from hnet_genomics.inference import readouts
from hnet_genomics.inference.engine import InferenceEngine
from hnet_genomics.inference.windows import Span, Window

STRANDS = ("fwd", "both")


@dataclass
class BitsBlock:
    """Bits for bases ``[start, start + n)`` of ``region`` per track (``fwd``; with both strands also
    ``rev`` and ``mean``); NaN where a base has no value."""

    region: Span
    start: int
    tracks: dict[str, np.ndarray]


def track_kinds(strand: str) -> tuple[str, ...]:
    if strand not in STRANDS:
        raise ConfigError(f"--strand: '{strand}' is not one of {', '.join(STRANDS)}")
    return ("fwd", "rev", "mean") if strand == "both" else ("fwd",)


def likelihood_blocks(
    engine: InferenceEngine,
    genome,
    regions: Iterable[Span],
    window: int,
    overlap: int,
    strand: str = "fwd",
    data_cfg: DataConfig | None = None,
    progress: bool = False,
) -> Iterator[BitsBlock]:
    """Stitched per-base bits, region after region, in blocks of at most ``window`` bases."""
    track_kinds(strand)
    strands = ("+", "-") if strand == "both" else ("+",)
    stream = engine.windows(
        genome, regions, window, overlap, readouts.bits, data_cfg, strands=strands, progress=progress, desc="likelihood"
    )
    if strand == "fwd":
        for w, _, (values,) in stream:
            yield BitsBlock(w.region, w.keep_from, {"fwd": values[w.keep_from - w.start :]})
        return
    joiner = _StrandJoiner()
    pending: tuple[Window, np.ndarray] | None = None  # reverse values wait for the next window's start
    for w, s, (values,) in stream:
        if s == "+":
            yield from joiner.push("+", w.region, w.keep_from, values[w.keep_from - w.start :])
            continue
        if pending is not None:
            yield from _push_reverse(joiner, *pending, w.start if w.region == pending[0].region else None)
        pending = (w, values[::-1])
    if pending is not None:
        yield from _push_reverse(joiner, *pending, None)


def _push_reverse(joiner: _StrandJoiner, w: Window, values: np.ndarray, next_start: int | None) -> Iterator[BitsBlock]:
    end = w.end if next_start is None else next_start
    yield from joiner.push("-", w.region, w.start, values[: end - w.start])


class _StrandJoiner:
    """Pairs the forward and reverse streams base by base: both tile every region from its start, in order,
    but in differently cut pieces."""

    def __init__(self) -> None:
        self.queues: dict[str, deque] = {"+": deque(), "-": deque()}

    def push(self, strand: str, region: Span, start: int, values: np.ndarray) -> Iterator[BitsBlock]:
        if len(values):
            self.queues[strand].append((region, start, values))
        fwd, rev = self.queues["+"], self.queues["-"]
        while fwd and rev:
            (region, start, f), (r_region, r_start, r) = fwd[0], rev[0]
            if (region, start) != (r_region, r_start):
                raise AssertionError(f"strands out of step at {region.chrom}:{start} / {r_region.chrom}:{r_start}")
            n = min(len(f), len(r))
            yield BitsBlock(region, start, {"fwd": f[:n], "rev": r[:n], "mean": strand_mean(f[:n], r[:n])})
            for q, v in ((fwd, f), (rev, r)):
                if n == len(v):
                    q.popleft()
                else:
                    q[0] = (region, start + n, v[n:])


def strand_mean(fwd: np.ndarray, rev: np.ndarray) -> np.ndarray:
    """Mean of the two strands where both have a value, else the one that has."""
    return np.where(np.isnan(fwd), rev, np.where(np.isnan(rev), fwd, (fwd + rev) / 2))
