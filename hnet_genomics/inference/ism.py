"""In-silico saturation mutagenesis: every base of a region changed to each of the three others and scored.

Each change is an SNV scored exactly as ``score-variants`` scores it (``inference/variants.py``: the same
windows, both strands by default, N terms left out), so a cell of the matrix equals that command's HNET_LLR
for the same SNV. The SNVs of one grid cell of positions share a window: its prefix runs once per strand and
all their continuations start from the state it leaves, so a region costs about one model window per
change on both strands instead of four. Positions whose reference base is not A, C, G or T get no values.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from hnet_genomics.data.intervals import Interval
from hnet_genomics.errors import ConfigError
from hnet_genomics.inference.engine import InferenceEngine, encode_region
from hnet_genomics.inference.variants import (
    AlleleTask,
    Footprint,
    Grid,
    VariantScoringConfig,
    allele_window,
    score_tasks,
)

BASES = b"ACGT"
POSITIONS_PER_CALL = 512  # positions scored together (whole grid cells), so memory stays bounded


def parse_region(text: str, sizes: dict[str, int]) -> Interval:
    """``chrom:start-end`` (1-based, inclusive, as samtools and IGV write regions; commas allowed)."""
    chrom, sep, span = text.rpartition(":")
    a, dash, b = span.replace(",", "").partition("-")
    if not sep or not dash or not a.isdigit() or not b.isdigit():
        raise ConfigError(
            f"--region {text}: expected chrom:start-end (1-based, inclusive), e.g. chr6:31000001-31000200"
        )
    if chrom not in sizes:
        known = ", ".join(list(sizes)[:5]) + (", ..." if len(sizes) > 5 else "")
        raise ConfigError(f"--region {text}: contig '{chrom}' is not in the FASTA (records: {known})")
    start, end = int(a), int(b)
    if not 1 <= start <= end <= sizes[chrom]:
        raise ConfigError(f"--region {text}: must lie within {chrom}:1-{sizes[chrom]:,} with start <= end")
    return Interval(chrom, start - 1, end)


@dataclass
class IsmResult:
    """LLR (nats) of every change: ``llr[b, i]`` for base ``BASES[b]`` at the region's i-th base; NaN on the
    reference base and where nothing was scored. ``strands[i]`` says which strands scored position i."""

    region: Interval
    ref: bytes
    llr: np.ndarray  # (4, L) float32
    strands: list[str]

    def mean(self) -> np.ndarray:
        """Per position, the mean LLR of its three changes (NaN where none was scored)."""
        return _reduce(self.llr, np.nanmean)

    def most_negative(self) -> np.ndarray:
        return _reduce(self.llr, np.nanmin)


def _reduce(llr: np.ndarray, f) -> np.ndarray:
    out = np.full(llr.shape[1], np.nan, dtype=np.float32)
    some = ~np.isnan(llr).all(0)
    out[some] = f(llr[:, some], axis=0)
    return out


def saturation_mutagenesis(
    engine: InferenceEngine, genome, region: Interval, cfg: VariantScoringConfig, progress: bool = False
) -> IsmResult:
    """Score every change of every base of ``region`` (module docstring)."""
    from tqdm import tqdm

    cfg.validate()
    layout = cfg.layout()
    size = genome.sizes[region.chrom]
    ref = genome.fetch(region.chrom, region.start, region.end).upper()
    llr = np.full((4, region.length), np.nan, dtype=np.float32)
    strands = [""] * region.length
    assert engine.data_cfg is not None  # set from the model when the engine is made
    data_cfg = engine.data_cfg

    def read(w) -> bytes:
        return encode_region(genome, w.chrom, w.lo, w.hi, data_cfg).tobytes()

    with tqdm(total=region.length, unit="bp", disable=not progress, desc="ism", dynamic_ncols=True) as bar:
        for lo, hi in _pieces(region, Grid(size, layout.grid), layout.flank):
            tasks = [
                AlleleTask(allele_window(region.chrom, size, fp, layout), fp)
                for i in range(lo, hi)
                if ref[i - region.start] in BASES
                for fp in _changes(i, ref[i - region.start])
            ]
            score_tasks(engine, tasks, cfg, read)
            for t in tasks:
                if t.score is not None and t.score.llr is not None:
                    i = t.fp.start - region.start
                    llr[BASES.index(t.fp.alt), i] = t.score.llr
                    strands[i] = "".join(sorted(t.score.strands))
            bar.update(hi - lo)
    return IsmResult(region, ref, llr, strands)


def _changes(i: int, ref: int) -> Iterator[Footprint]:
    for b in BASES:
        if b != ref:
            yield Footprint(i, bytes([ref]), bytes([b]))


def _pieces(region: Interval, grid: Grid, flank: int) -> Iterator[tuple[int, int]]:
    """The region cut into runs of about ``POSITIONS_PER_CALL`` positions at the edges of the grid cells that
    decide which SNVs share a window (an SNV at ``a`` shares with those of the same ``grid.down(a - flank)``)."""
    step = max(POSITIONS_PER_CALL // grid.spacing, 1) * grid.spacing
    lo = region.start
    while lo < region.end:
        hi = min(grid.down(lo - flank) + flank + step, region.end)  # > lo: the cell holding lo is shorter than step
        yield lo, hi
        lo = hi
