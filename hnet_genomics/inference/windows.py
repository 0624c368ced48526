"""Where model windows start, and which bases each window decides.

Stitching rule: windows of ``window`` bases start every ``window - overlap`` bases from the region start
(``phase`` shifts every window after the first, to measure how much the grid matters). Each base takes its
decision from the earliest-starting window that contains it, i.e. the one in which it has the most left
context. Every base past the first ``overlap`` of a region is therefore decided with at least ``overlap``
and fewer than ``window`` bases of left context; the first ``overlap`` bases see the region start, exactly
as in a single pass. Where the model's effective context is shorter than ``overlap`` the decisions do not
depend on where windows start; ``boundaries.window_disagreement`` measures how far that holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from hnet_genomics.errors import ConfigError


class Span(Protocol):
    """A 0-based half-open interval ``[start, end)`` of record ``chrom`` (``export.regions.Region``); read only,
    so frozen dataclasses qualify."""

    @property
    def chrom(self) -> str: ...
    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...


SpanT = TypeVar("SpanT", bound=Span)  # the caller's own region type, handed back on each of its windows


# Fallbacks for models that did not record their training length (the CLI prefers the recorded one). With the
# trained tiny model a quarter overlap costs 1.33x compute and leaves 5.4e-3 of stage-1 decisions dependent
# on the window grid; half 3.5e-3 at 2x, three quarters 1.9e-3 at 4x; windows longer than the training
# length 3.6e-2 (benchmarks/results/boundary_export-cpu.md).
DEFAULT_WINDOW, DEFAULT_OVERLAP = 1024, 256


@dataclass(frozen=True)
class Window(Generic[SpanT]):
    """Model input ``[start, end)``; its decisions are kept for bases ``[keep_from, end)``."""

    region: SpanT
    start: int
    end: int
    keep_from: int


def check_window(window: int, overlap: int) -> None:
    if window < 2:
        raise ConfigError(f"--window must be at least 2, got {window}")
    if not 0 <= overlap < window:
        raise ConfigError(f"--overlap must be in [0, window), got {overlap} with window {window}")


def plan_windows(region: SpanT, window: int, overlap: int, phase: int = 0) -> Iterator[Window[SpanT]]:
    """Windows covering ``region``; consecutive kept ranges tile it exactly."""
    check_window(window, overlap)
    stride = window - overlap
    start, end = region.start, min(region.start + window, region.end)
    yield Window(region, start, end, start)
    nxt = region.start + (phase % stride or stride)
    while end < region.end:
        start, kept = nxt, end
        end = min(start + window, region.end)
        yield Window(region, start, end, kept)
        nxt += stride


def reverse_keep_ends(windows: Iterator[Window[SpanT]]) -> Iterator[tuple[Window[SpanT], int]]:
    """Each window with where its reverse-strand decisions end: it decides ``[start, next start)`` (its last
    window: ``[start, region end)``), the bases for which it holds the most right context.

    This mirrors the forward rule on the same grid, so both strands come from one pass over the windows: every
    base but a region's last ``overlap`` is decided with at least ``overlap`` bases of right context.
    """
    pending: Window[SpanT] | None = None
    for w in windows:
        if pending is not None:
            yield pending, (w.start if w.region == pending.region else pending.end)
        pending = w
    if pending is not None:
        yield pending, pending.end
