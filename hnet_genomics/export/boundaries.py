"""Chunk boundaries of a trained H-Net over whole records or BED regions, by stitched overlapping windows.

Windows (see ``inference/windows.py`` for the stitching rule) go through the inference engine in batches;
each keeps the decisions of the bases it owns. Stage s > 1 decisions are made on stage s-1 chunks and mapped
back to bases (``inference/readouts.py``): the j-th position of level s sits at the base of the j-th level
s-1 boundary, so a stage-s boundary is marked at that base. A stage-s probability track is the router's p
at those bases and 0 at every other base (where the level has no position and hence no decision).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from hnet_genomics.atomic import output_dir
from hnet_genomics.config import DataConfig
from hnet_genomics.data.genome import Genome
from hnet_genomics.errors import ConfigError
from hnet_genomics.export.regions import Region
from hnet_genomics.inference.engine import InferenceEngine
from hnet_genomics.inference.readouts import base_level_decisions, decisions, routing_pass
from hnet_genomics.inference.windows import DEFAULT_OVERLAP, DEFAULT_WINDOW, check_window

if TYPE_CHECKING:
    from hnet_genomics.model.lm import HNetLM

__all__ = [
    "StitchedDecisions",
    "Disagreement",
    "ExportResult",
    "base_level_decisions",
    "export_boundaries",
    "predict_blocks",
    "require_chunking",
    "routing_pass",
    "window_disagreement",
]


@dataclass
class StitchedDecisions:
    """Stitched decisions for bases ``[start, start + n)`` of ``region``: one (bool, float) pair per stage."""

    region: Region
    start: int
    boundaries: list[np.ndarray]
    probs: list[np.ndarray]


def require_chunking(model: HNetLM, where: str = "model") -> int:
    """Number of chunking stages; an isotropic baseline has no boundaries to export."""
    stages = model.config.num_stages
    if stages == 0:
        raise ConfigError(
            f"{where}: an isotropic model (arch_layout {model.config.arch_layout}) has no "
            f"chunk boundaries; use an H-Net checkpoint"
        )
    return stages


def predict_blocks(
    model: HNetLM,
    genome: Genome,
    regions: Iterable[Region],
    window: int = DEFAULT_WINDOW,
    overlap: int = DEFAULT_OVERLAP,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    phase: int = 0,
    data_cfg: DataConfig | None = None,
    progress: bool = False,
    precision: str = "fp32",
) -> Iterator[StitchedDecisions]:
    """Stitched per-base decisions, region after region, in blocks of at most ``window`` bases.

    Memory is bounded by one batch of windows, whatever the length of the chromosome.
    """
    require_chunking(model)
    engine = InferenceEngine(model, str(device), precision, batch_size)
    stages = model.config.num_stages
    for w, _, row in engine.windows(
        genome, regions, window, overlap, decisions, data_cfg, phase, progress=progress, desc="boundaries"
    ):
        a, b = w.keep_from - w.start, w.end - w.start
        yield StitchedDecisions(w.region, w.keep_from, [x[a:b] for x in row[:stages]], [x[a:b] for x in row[stages:]])


@dataclass
class Disagreement:
    """How often two window grids give different decisions, per stage."""

    bases: int
    differing_bases: list[int]  # bases whose boundary decision differs
    boundaries: list[int]  # boundaries in the reference grid

    def rate(self, stage: int) -> float:
        return self.differing_bases[stage] / max(self.bases, 1)

    def boundary_fraction(self, stage: int) -> float:
        return self.differing_bases[stage] / max(self.boundaries[stage], 1)


def window_disagreement(
    model: HNetLM,
    genome: Genome,
    regions: list[Region],
    window: int,
    overlap: int,
    phase: int,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
) -> Disagreement:
    """Compare the default window grid with one shifted by ``phase`` bases."""
    a, b = (
        [
            np.concatenate(x)
            for x in zip(
                *(
                    blk.boundaries
                    for blk in predict_blocks(model, genome, regions, window, overlap, batch_size, device, phase=p)
                )
            )
        ]
        for p in (0, phase)
    )
    return Disagreement(len(a[0]), [int((x != y).sum()) for x, y in zip(a, b)], [int(x.sum()) for x in a])


@dataclass
class ExportResult:
    files: list[Path]
    bases: int
    chunks: list[int]  # per stage


def export_boundaries(
    model: HNetLM,
    genome: Genome,
    regions: list[Region],
    prefix: str | Path,
    formats: tuple[str, ...],
    window: int = DEFAULT_WINDOW,
    overlap: int = DEFAULT_OVERLAP,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    progress: bool = False,
    precision: str = "fp32",
) -> ExportResult:
    """Run the model and write every requested track format per stage, plus ``PREFIX.chrom.sizes``."""
    from contextlib import ExitStack

    from hnet_genomics.export.tracks import StageTrackWriter, check_writable, write_chrom_sizes

    stages = require_chunking(model)
    check_window(window, overlap)
    check_writable(prefix)
    name = Path(prefix).name
    with output_dir(Path(prefix).parent), ExitStack() as stack:
        writers = [
            stack.enter_context(StageTrackWriter(prefix, s + 1, genome.sizes, formats, f"{name} H-Net stage {s + 1}"))
            for s in range(stages)
        ]
        for blk in predict_blocks(
            model, genome, regions, window, overlap, batch_size, device, progress=progress, precision=precision
        ):
            for w, b, p in zip(writers, blk.boundaries, blk.probs):
                w.add(blk.region, blk.start, b, p)
        files = [f for w in writers for f in w.finish()]
        files.append(write_chrom_sizes(f"{prefix}.chrom.sizes", genome.sizes))
    return ExportResult(files, writers[0].n_bases, [w.n_chunks for w in writers])
