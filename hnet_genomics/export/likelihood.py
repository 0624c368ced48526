"""Per-base likelihood tracks (bits) as bedGraph and bigWig, written while the model runs; shard merge.

Files: ``PREFIX.bits.fwd.{bedGraph,bw}`` (surprisal of each base given its left context), and with both
strands ``PREFIX.bits.rev.*`` and ``PREFIX.bits.mean.*`` (``inference/likelihood.py`` says exactly what
they hold), plus ``PREFIX.chrom.sizes``. Values are rounded to ``BITS_DECIMALS`` decimals; runs of equal
values share one bedGraph line and bases without a value (a region's first base on the forward strand, N)
have none, so they are gaps in a browser. Like the boundary tracks, the bedGraph is appended block by block
into a temp file beside its final name and the bigWig is built from it at the end.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hnet_genomics.atomic import commit, output_dir
from hnet_genomics.errors import ConfigError, DataError
from hnet_genomics.export.regions import Region
from hnet_genomics.export.shards import _ordered, read_chrom_sizes
from hnet_genomics.export.tracks import check_writable, data_lines, temp_path, write_bigwig, write_chrom_sizes
from hnet_genomics.inference.engine import InferenceEngine
from hnet_genomics.inference.likelihood import likelihood_blocks, track_kinds
from hnet_genomics.inference.windows import Span

BITS_DECIMALS = 3
FORMATS = ("bedgraph", "bigwig")
KINDS = ("fwd", "rev", "mean")
_LABELS = {
    "fwd": "surprisal given the left context",
    "rev": "surprisal on the reverse strand",
    "mean": "surprisal, mean of both strands",
}


def bits_paths(prefix: str | Path, kind: str) -> dict[str, Path]:
    return {"bedgraph": Path(f"{prefix}.bits.{kind}.bedGraph"), "bigwig": Path(f"{prefix}.bits.{kind}.bw")}


def parse_bits_formats(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    unknown = [f for f in names if f not in FORMATS]
    if unknown or not names:
        raise ConfigError(
            f"--formats: unknown format '{unknown[0] if unknown else text}' (choose from {','.join(FORMATS)})"
        )
    return names


def track_line(prefix: str | Path, kind: str) -> str:
    name = f"{Path(prefix).name} bits {kind}"
    return (
        f'track type=bedGraph name="{name}" description="{Path(prefix).name} H-Net {_LABELS[kind]} (bits)" '
        f"visibility=full autoScale=off viewLimits=0:4\n"
    )


class BitsTrackWriter:
    """One bits track (bedGraph, then bigWig), fed block by block in region order."""

    def __init__(self, prefix: str | Path, kind: str, sizes: dict[str, int], formats: tuple[str, ...]) -> None:
        self.paths = bits_paths(prefix, kind)
        self.formats, self.sizes = formats, dict(sizes)
        self._tmp = temp_path(self.paths["bedgraph"])
        self._f = self._tmp.open("w")
        self._f.write(track_line(prefix, kind))
        self._region: Span | None = None
        self._next = 0
        self._run_start, self._run_value = 0, float("nan")
        self.total_bits, self.n_values, self.n_bases = 0.0, 0, 0

    def __enter__(self) -> BitsTrackWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()

    def add(self, region: Span, start: int, values: np.ndarray) -> None:
        """Append values for bases ``[start, start + len(values))`` of ``region`` (NaN = no value)."""
        if not len(values):
            return
        if region != self._region:
            if self._region is not None:
                self._close_run()
            if start != region.start:
                raise ValueError(f"{region}: first block must start at the region start")
            self._region, self._next = region, start
            self._run_start, self._run_value = start, float("nan")
        if start != self._next:
            raise ValueError(f"{region}: block at {start} does not continue at {self._next}")
        self._next = start + len(values)
        self.n_bases += len(values)
        finite = ~np.isnan(values)
        self.total_bits += float(values[finite].sum())
        self.n_values += int(finite.sum())
        v = np.round(np.asarray(values, dtype=np.float64), BITS_DECIMALS)
        same = (v[1:] == v[:-1]) | (np.isnan(v[1:]) & np.isnan(v[:-1]))
        starts = np.concatenate(([0], np.flatnonzero(~same) + 1))
        if _same(v[0], self._run_value):
            starts = starts[1:]
        lines = []
        for i in starts.tolist():
            lines.append(self._run_line(start + i))
            self._run_start, self._run_value = start + i, float(v[i])
        self._f.write("".join(lines))

    def _run_line(self, end: int) -> str:
        if np.isnan(self._run_value) or end == self._run_start:
            return ""
        assert self._region is not None  # add() sets it before any run holds a value
        return f"{self._region.chrom}\t{self._run_start}\t{end}\t{self._run_value:g}\n"

    def _close_run(self) -> None:
        assert self._region is not None  # called only once a region was added
        if self._next != self._region.end:
            raise ValueError(f"{self._region}: values stop at {self._next}, before the region end")
        self._f.write(self._run_line(self._region.end))

    def finish(self) -> list[Path]:
        if self._region is not None:
            self._close_run()
        self._f.close()
        try:
            return build_bits_files(self._tmp, self.paths, self.sizes, self.formats)
        finally:
            self.abort()

    def abort(self) -> None:
        self._f.close()
        self._tmp.unlink(missing_ok=True)


def _same(a: float, b: float) -> bool:
    return a == b or (np.isnan(a) and np.isnan(b))


def build_bits_files(
    bedgraph: Path, paths: dict[str, Path], sizes: dict[str, int], formats: tuple[str, ...]
) -> list[Path]:
    """From a complete bedGraph temp file (track line first): the bigWig, then the bedGraph into place."""
    written = []
    if "bigwig" in formats and (bw := write_bigwig(bedgraph, paths["bigwig"], sizes)) is not None:
        written.append(bw)
    if "bedgraph" in formats:
        written.append(commit(bedgraph, paths["bedgraph"]))
    return written


@dataclass
class LikelihoodResult:
    files: list[Path]
    bases: int
    mean_bits: dict[str, float]  # per track, over the bases that have a value


def export_likelihood(
    engine: InferenceEngine,
    genome,
    regions: list[Region],
    prefix: str | Path,
    formats: tuple[str, ...],
    window: int,
    overlap: int,
    strand: str = "fwd",
    progress: bool = False,
) -> LikelihoodResult:
    """Run the model over ``regions`` and write the bits tracks of ``strand`` plus ``PREFIX.chrom.sizes``."""
    kinds = track_kinds(strand)
    check_writable(prefix)
    with output_dir(Path(prefix).parent), ExitStack() as stack:
        writers = {k: stack.enter_context(BitsTrackWriter(prefix, k, genome.sizes, formats)) for k in kinds}
        for blk in likelihood_blocks(engine, genome, regions, window, overlap, strand, progress=progress):
            for k, w in writers.items():
                w.add(blk.region, blk.start, blk.tracks[k])
        files = [f for w in writers.values() for f in w.finish()]
    files.append(write_chrom_sizes(f"{prefix}.chrom.sizes", genome.sizes))
    fwd = writers["fwd"]
    return LikelihoodResult(files, fwd.n_bases, {k: w.total_bits / max(w.n_values, 1) for k, w in writers.items()})


def is_likelihood_shard(prefix: str | Path) -> bool:
    return bits_paths(prefix, "fwd")["bedgraph"].exists()


def merge_likelihood(shards: Iterable[str | Path], prefix: str | Path, formats: tuple[str, ...]) -> list[Path]:
    """Concatenate the bits bedGraphs of ``likelihood --shard`` runs in genome order and build every requested
    format, as one unsharded run would have written them."""
    prefixes = [str(s) for s in shards]
    if not prefixes:
        raise ConfigError("merge-tracks: no shards given")
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ConfigError(
            f"--formats: '{(unknown or [''])[0]}' is not a format of likelihood tracks ({','.join(FORMATS)})"
        )
    kinds = [k for k in KINDS if bits_paths(prefixes[0], k)["bedgraph"].exists()]
    sizes = read_chrom_sizes(f"{prefixes[0]}.chrom.sizes")
    for shard in prefixes:
        if read_chrom_sizes(f"{shard}.chrom.sizes") != sizes:
            raise DataError(
                f"{shard}.chrom.sizes: differs from {prefixes[0]}.chrom.sizes; shards must come from one genome"
            )
        for k in KINDS:
            if bits_paths(shard, k)["bedgraph"].exists() != (k in kinds):
                raise DataError(
                    f"{bits_paths(shard, k)['bedgraph']}: present in only some shards; export every "
                    f"shard with the same --strand"
                )
    order = _ordered(prefixes, lambda s: bits_paths(s, "fwd")["bedgraph"])
    written = []
    with output_dir(Path(prefix).parent):  # created with its parents, removed again if the merge fails
        for k in kinds:
            paths = bits_paths(prefix, k)
            tmp = temp_path(paths["bedgraph"])
            try:
                with tmp.open("w") as out:
                    out.write(track_line(prefix, k))
                    for shard in order:
                        out.writelines("\t".join(f) + "\n" for f in data_lines(bits_paths(shard, k)["bedgraph"]))
                written += build_bits_files(tmp, paths, sizes, formats)
            finally:
                tmp.unlink(missing_ok=True)
        written.append(write_chrom_sizes(f"{prefix}.chrom.sizes", sizes))
    return written
