"""Chunk boundaries of a trained H-Net over whole records or BED regions, by stitched overlapping windows.

Windows (see ``windows.py`` for the stitching rule) go through the model in batches; each keeps the
decisions of the bases it owns. Stage s > 1 decisions are made on stage s-1 chunks and mapped back to
bases: the j-th position of level s sits at the base of the j-th level s-1 boundary, so a stage-s boundary
is marked at that base. A stage-s probability track is the router's p at those bases and 0 at every other
base (where the level has no position and hence no decision).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hnet_genomics.config import DataConfig
from hnet_genomics.data.atomic import output_dir
from hnet_genomics.data.encoding import encode_window
from hnet_genomics.data.genome import Genome
from hnet_genomics.errors import ConfigError
from hnet_genomics.export.regions import Region
from hnet_genomics.export.windows import DEFAULT_OVERLAP, DEFAULT_WINDOW, Window, check_window, plan_windows


@dataclass
class Block:
    """Stitched decisions for bases ``[start, start + n)`` of ``region``: one (bool, float) pair per stage."""

    region: Region
    start: int
    boundaries: list[np.ndarray]
    probs: list[np.ndarray]


def require_chunking(model: torch.nn.Module, where: str = "model") -> int:
    """Number of chunking stages; an isotropic baseline has no boundaries to export."""
    stages = model.config.num_stages
    if stages == 0:
        raise ConfigError(f"{where}: an isotropic model (arch_layout {model.config.arch_layout}) has no "
                          f"chunk boundaries; use an H-Net checkpoint")
    return stages


@torch.inference_mode()
def routing_pass(model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor
                 ) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(boundary, p, valid) per chunking level from the model's routing-only pass (``HNetLM.route``);
    ``test_routing_pass_matches_full_forward`` pins it to the model's own ``forward``."""
    return model.route(ids, mask)


@torch.inference_mode()
def base_level_decisions(model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor
                         ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per stage, (B, L) boundary masks and probabilities at base resolution."""
    levels = routing_pass(model, ids, mask)
    B, L = ids.shape
    pos = torch.arange(L, device=ids.device).expand(B, L)  # base of each position of the current level
    bounds, probs = [], []
    for s, (bm, bp, valid) in enumerate(levels):
        bm = bm & valid
        b_base = torch.zeros(B, L, dtype=torch.bool, device=ids.device)
        p_base = torch.zeros(B, L, dtype=torch.float32, device=ids.device)
        r, c = valid.nonzero(as_tuple=True)
        p_base[r, pos[r, c]] = bp[r, c].float()
        r, c = bm.nonzero(as_tuple=True)
        b_base[r, pos[r, c]] = True
        bounds.append(b_base)
        probs.append(p_base)
        if s + 1 < len(levels):
            nxt = torch.zeros_like(levels[s + 1][2], dtype=torch.long)
            nxt[r, (bm.long().cumsum(1) - 1)[r, c]] = pos[r, c]
            pos = nxt
    return bounds, probs


def _encode(genome: Genome, w: Window, data_cfg: DataConfig) -> np.ndarray:
    raw = genome.fetch(w.region.chrom, w.start, w.end)
    return np.frombuffer(encode_window(raw, data_cfg, str(genome.path), w.region.chrom, w.start).ids, np.uint8)


def predict_blocks(model: torch.nn.Module, genome: Genome, regions: Iterable[Region],
                   window: int = DEFAULT_WINDOW, overlap: int = DEFAULT_OVERLAP, batch_size: int = 16,
                   device: str | torch.device = "cpu", phase: int = 0, data_cfg: DataConfig | None = None,
                   progress: bool = False) -> Iterator[Block]:
    """Stitched per-base decisions, region after region, in blocks of at most ``window`` bases.

    Memory is bounded by one batch of windows, whatever the length of the chromosome.
    """
    from tqdm import tqdm

    require_chunking(model)
    data_cfg = data_cfg or DataConfig()
    regions = list(regions)
    model = model.to(device).eval()
    bar = tqdm(total=sum(len(r) for r in regions), unit="bp", unit_scale=True, disable=not progress,
               desc="boundaries", dynamic_ncols=True)
    windows = (w for r in regions for w in plan_windows(r, window, overlap, phase))
    with bar:
        while batch := [w for _, w in zip(range(batch_size), windows)]:
            L = max(w.end - w.start for w in batch)
            ids = np.zeros((len(batch), L), dtype=np.uint8)
            mask = np.zeros((len(batch), L), dtype=bool)
            for i, w in enumerate(batch):
                ids[i, : w.end - w.start] = _encode(genome, w, data_cfg)
                mask[i, : w.end - w.start] = True
            bounds, probs = base_level_decisions(model, torch.from_numpy(ids).long().to(device),
                                                 torch.from_numpy(mask).to(device))
            bounds = [b.cpu().numpy() for b in bounds]
            probs = [p.cpu().numpy() for p in probs]
            for i, w in enumerate(batch):
                a, b = w.keep_from - w.start, w.end - w.start
                yield Block(w.region, w.keep_from, [x[i, a:b] for x in bounds], [x[i, a:b] for x in probs])
                bar.update(b - a)


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


def window_disagreement(model: torch.nn.Module, genome: Genome, regions: list[Region], window: int, overlap: int,
                        phase: int, batch_size: int = 8, device: str | torch.device = "cpu") -> Disagreement:
    """Compare the default window grid with one shifted by ``phase`` bases."""
    a, b = ([np.concatenate(x) for x in zip(*(blk.boundaries for blk in
                                              predict_blocks(model, genome, regions, window, overlap, batch_size,
                                                             device, phase=p)))] for p in (0, phase))
    return Disagreement(len(a[0]), [int((x != y).sum()) for x, y in zip(a, b)], [int(x.sum()) for x in a])


@dataclass
class ExportResult:
    files: list[Path]
    bases: int
    chunks: list[int]  # per stage


def export_boundaries(model: torch.nn.Module, genome: Genome, regions: list[Region], prefix: str | Path,
                      formats: tuple[str, ...], window: int = DEFAULT_WINDOW, overlap: int = DEFAULT_OVERLAP,
                      batch_size: int = 16,
                      device: str | torch.device = "cpu", progress: bool = False) -> ExportResult:
    """Run the model and write every requested track format per stage, plus ``PREFIX.chrom.sizes``."""
    from contextlib import ExitStack

    from hnet_genomics.export.tracks import StageTrackWriter, check_writable, write_chrom_sizes

    stages = require_chunking(model)
    check_window(window, overlap)
    check_writable(prefix)
    name = Path(prefix).name
    with output_dir(Path(prefix).parent), ExitStack() as stack:
        writers = [stack.enter_context(StageTrackWriter(prefix, s + 1, genome.sizes, formats,
                                                        f"{name} H-Net stage {s + 1}"))
                   for s in range(stages)]
        for blk in predict_blocks(model, genome, regions, window, overlap, batch_size, device, progress=progress):
            for w, b, p in zip(writers, blk.boundaries, blk.probs):
                w.add(blk.region, blk.start, b, p)
        files = [f for w in writers for f in w.finish()]
        files.append(write_chrom_sizes(f"{prefix}.chrom.sizes", genome.sizes))
    return ExportResult(files, writers[0].n_bases, [w.n_chunks for w in writers])
