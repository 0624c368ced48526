"""Genome-browser tracks from per-base boundary decisions, written while the model is still running.

A stage's boundaries arrive in blocks (consecutive bases of one region, regions in sorted order). The chunk
BED and the probability bedGraph are appended block by block, so memory does not grow with the chromosome;
bigWig, bigBed and bgzip+tabix are built from those two text files at the end. Every file appears under its
final name only once complete (temp file in the same directory, then ``os.replace``).

Chunk BED is BED9: name ``c<k>`` (k-th chunk of its region), score = 1000 x the boundary probability at the
chunk's first base, and itemRgb alternating between two colours from line to line so that neighbouring
chunks stay distinguishable in a browser.
Probabilities are rounded to 4 decimals in every format, and runs of equal values share one bedGraph line.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from hnet_genomics.atomic import atomic_path, commit, temp_sibling, write_text_atomic
from hnet_genomics.errors import DataError
from hnet_genomics.export.regions import Region

log = logging.getLogger(__name__)

FORMATS = ("bed", "bedgraph", "bigwig", "bigbed", "tabix")
PROB_DECIMALS = 4
CHUNK_COLOURS = ("31,119,180", "255,127,14")
BED9_AUTOSQL = """table hnetChunks
"H-Net dynamic-chunking segments"
(
string chrom;      "Reference sequence"
uint   chromStart; "Chunk start (0-based)"
uint   chromEnd;   "Chunk end (exclusive)"
string name;       "c<k>: k-th chunk of its region"
uint   score;      "1000 x boundary probability at the chunk's first base"
char[1] strand;    "Not stranded"
uint   thickStart; "Same as chromStart"
uint   thickEnd;   "Same as chromEnd"
uint   reserved;   "itemRgb, alternating from chunk to chunk"
)
"""


def stage_paths(prefix: str | Path, stage: int) -> dict[str, Path]:
    """Output file per format for one stage (tabix adds ``.tbi`` beside its ``.bed.gz``)."""
    base = f"{prefix}.stage{stage}"
    return {
        "bed": Path(f"{base}.bed"),
        "bedgraph": Path(f"{base}.bedGraph"),
        "bigwig": Path(f"{base}.bw"),
        "bigbed": Path(f"{base}.bb"),
        "tabix": Path(f"{base}.bed.gz"),
    }


def parse_formats(text: str) -> tuple[str, ...]:
    """``"bed,bigwig"`` -> ("bed", "bigwig"); unknown names are a user error."""
    names = tuple(dict.fromkeys(f.strip().lower() for f in text.split(",") if f.strip()))
    unknown = [f for f in names if f not in FORMATS]
    if unknown or not names:
        raise DataError(
            f"--formats: unknown format '{unknown[0] if unknown else text}' (choose from {','.join(FORMATS)})"
        )
    return names


def check_writable(prefix: str | Path) -> None:
    """Fail before hours of inference if the outputs could not be written (a missing folder is created later)."""
    from hnet_genomics.options import check_output_prefix

    check_output_prefix(prefix)


def temp_path(final: Path) -> Path:
    """A temporary beside ``final`` with its suffix (pybigtools picks the format from it)."""
    return temp_sibling(final, keep_suffix=True)


def write_chrom_sizes(path: str | Path, sizes: dict[str, int]) -> Path:
    """UCSC ``chrom.sizes`` (name<TAB>length), in the genome's record order."""
    write_text_atomic(path, "".join(f"{c}\t{n}\n" for c, n in sizes.items()))
    return Path(path)


class StageTrackWriter:
    """All requested track formats of one chunking stage, fed block by block.

    Call ``add`` for consecutive blocks of each region (regions in sorted order, a region's first block
    starting at ``region.start`` with a boundary there), then ``finish``. Used as a context manager, an
    exception removes every temp file and leaves no partial outputs behind.
    """

    def __init__(
        self, prefix: str | Path, stage: int, sizes: dict[str, int], formats: tuple[str, ...], description: str = ""
    ) -> None:
        self.paths = stage_paths(prefix, stage)
        self.formats = formats
        self.sizes = dict(sizes)
        self._bed_header, self._bedgraph_header = track_lines(prefix, stage, description)
        self._bed_tmp = temp_path(self.paths["bed"])
        self._bg_tmp = temp_path(self.paths["bedgraph"]) if {"bedgraph", "bigwig"} & set(formats) else None
        self._bed = self._bed_tmp.open("w")
        self._bed.write(self._bed_header)
        self._bg = self._bg_tmp.open("w") if self._bg_tmp else None
        if self._bg:
            self._bg.write(self._bedgraph_header)
        self._region: Region | None = None
        self._next = 0  # next base expected in the current region
        self._chunk_start = 0
        self._chunk_score = 0
        self._chunk_index = 0
        self._run_start = 0
        self._run_value = 0.0
        self.n_chunks = 0
        self.n_bases = 0

    def __enter__(self) -> StageTrackWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()

    def add(self, region: Region, start: int, boundaries: np.ndarray, probs: np.ndarray) -> None:
        """Append decisions for bases ``[start, start + len(boundaries))`` of ``region``."""
        n = len(boundaries)
        if n == 0:
            return
        if region != self._region:
            if self._region is not None:
                self._close_region()
            if start != region.start or not boundaries[0]:
                raise ValueError(f"{region}: first block must start at the region start with a boundary")
            if self._region is not None and region < self._region:
                raise ValueError(f"regions out of order: {region} after {self._region}")
            self._region, self._next = region, region.start
            self._chunk_index = 0
            self._run_start, self._run_value = region.start, float("nan")
        if start != self._next or start + n > region.end:
            raise ValueError(f"{region}: block {start}-{start + n} does not continue at {self._next}")
        self._next = start + n
        self.n_bases += n
        values = np.round(np.asarray(probs, dtype=np.float64), PROB_DECIMALS)
        self._add_chunks(start, np.flatnonzero(boundaries), values)
        if self._bg:
            self._add_runs(start, values)

    def _add_chunks(self, start: int, idx: np.ndarray, values: np.ndarray) -> None:
        assert self._region is not None  # add() sets it first
        chrom = self._region.chrom
        starts = (start + idx).tolist()
        scores = np.rint(values[idx] * 1000).astype(np.int64).tolist()
        lines = []
        for pos, score in zip(starts, scores):
            if pos != self._region.start:
                lines.append(self._chunk_line(chrom, pos))
            self._chunk_start, self._chunk_score = pos, score
        self._bed.write("".join(lines))

    def _chunk_line(self, chrom: str, end: int) -> str:
        s, k, colour = self._chunk_start, self._chunk_index, CHUNK_COLOURS[self.n_chunks % 2]
        self._chunk_index += 1
        self.n_chunks += 1
        return f"{chrom}\t{s}\t{end}\tc{k}\t{self._chunk_score}\t.\t{s}\t{end}\t{colour}\n"

    def _add_runs(self, start: int, values: np.ndarray) -> None:
        change = np.flatnonzero(np.diff(values)) + 1
        run_starts = np.concatenate(([0], change))
        if values[0] == self._run_value:  # the open run continues into this block
            run_starts = run_starts[1:]
        assert self._region is not None and self._bg is not None  # add() sets the region, calls only with a bg
        chrom = self._region.chrom
        lines = []
        for i in run_starts.tolist():
            pos = start + i
            if pos != self._run_start:
                lines.append(f"{chrom}\t{self._run_start}\t{pos}\t{self._run_value:g}\n")
            self._run_start, self._run_value = pos, float(values[i])
        self._bg.write("".join(lines))

    def _close_region(self) -> None:
        assert self._region is not None  # called only once a region was added
        if self._next != self._region.end:
            raise ValueError(f"{self._region}: decisions stop at {self._next}, before the region end")
        self._bed.write(self._chunk_line(self._region.chrom, self._region.end))
        if self._bg:
            self._bg.write(f"{self._region.chrom}\t{self._run_start}\t{self._region.end}\t{self._run_value:g}\n")

    def finish(self) -> list[Path]:
        """Close the last chunk, build the binary/indexed formats and move everything into place."""
        if self._region is not None:
            self._close_region()
        self._bed.close()
        if self._bg:
            self._bg.close()
        try:
            return build_track_files(self._bed_tmp, self._bg_tmp, self.paths, self.sizes, self.formats)
        finally:
            self.abort()

    def abort(self) -> None:
        """Drop every temp file (finished outputs were already renamed away from them)."""
        for f in (self._bed, self._bg):
            if f:
                f.close()
        for p in (self._bed_tmp, self._bg_tmp):
            if p:
                p.unlink(missing_ok=True)


def track_lines(prefix: str | Path, stage: int, description: str = "") -> tuple[str, str]:
    """Browser ``track`` lines of a stage's chunk BED and probability bedGraph."""
    name = f"{Path(prefix).name} stage{stage}"
    return (
        f'track name="{name} chunks" description="{description or name} chunks" itemRgb="On" visibility=dense\n',
        f'track type=bedGraph name="{name} p" description="{description or name} boundary probability" '
        f"visibility=full autoScale=off viewLimits=0:1\n",
    )


def build_track_files(
    bed: Path, bedgraph: Path | None, paths: dict[str, Path], sizes: dict[str, int], formats: tuple[str, ...]
) -> list[Path]:
    """From a complete chunk BED and probability bedGraph (temp files, track line first), build the binary
    and indexed formats, then move the text files into place if they were asked for."""
    written: list[Path | None] = []
    if "bigwig" in formats:
        assert bedgraph is not None  # both callers write the bedGraph whenever bigwig or bedgraph is asked for
        written.append(write_bigwig(bedgraph, paths["bigwig"], sizes))
    if "bigbed" in formats:
        written.append(_write_bigbed(bed, paths["bigbed"], sizes))
    if "tabix" in formats:
        written += _write_tabix(bed, paths["tabix"])
    if "bedgraph" in formats:
        assert bedgraph is not None
        written.append(commit(bedgraph, paths["bedgraph"]))
    if "bed" in formats:
        written.append(commit(bed, paths["bed"]))
    return [p for p in written if p is not None]


def data_lines(path: Path) -> Iterator[list[str]]:
    """Tab-split lines of a BED/bedGraph written here, after its track line."""
    with path.open() as f:
        next(f, None)
        for line in f:
            yield line.rstrip("\n").split("\t")


def _nonempty(records: Iterator, final: Path) -> Iterator | None:
    """``records`` unchanged, or None (with a warning) when there are none: pybigtools would write a file
    that no bigWig / bigBed reader opens, so an empty track gets no binary file at all."""
    first = next(records, None)
    if first is None:
        kind = "bigWig" if final.suffix == ".bw" else "bigBed"
        log.warning(
            f"{final} not written: the track has no data (no base of the regions has a value) and a {kind} "
            f"file cannot be empty"
        )
        return None
    return itertools.chain([first], records)


def write_bigwig(bedgraph: Path, final: Path, sizes: dict[str, int]) -> Path | None:
    """The bigWig of a bedGraph written here; None (nothing written) when the bedGraph has no data line."""
    import pybigtools

    records = _nonempty(((c, int(s), int(e), float(v)) for c, s, e, v in data_lines(bedgraph)), final)
    if records is None:
        return None
    with atomic_path(final, keep_suffix=True) as tmp:
        pybigtools.open(str(tmp), "w").write(sizes, records)
    return final


def _write_bigbed(bed: Path, final: Path, sizes: dict[str, int]) -> Path | None:
    import pybigtools

    records = _nonempty(((f[0], int(f[1]), int(f[2]), "\t".join(f[3:])) for f in data_lines(bed)), final)
    if records is None:
        return None
    with atomic_path(final, keep_suffix=True) as tmp:
        pybigtools.open(str(tmp), "w").write(sizes, records, autosql=BED9_AUTOSQL)
    return final


def _write_tabix(bed: Path, gz: Path) -> list[Path]:
    import pysam

    from hnet_genomics.data.bgzf import BgzfWriter
    from hnet_genomics.options import thread_count

    tbi = Path(f"{gz}.tbi")
    tmp_gz = temp_path(gz)
    tmp_tbi = Path(f"{tmp_gz}.tbi")
    try:
        with open(bed, "rb") as src, BgzfWriter(tmp_gz, thread_count()) as out:
            while chunk := src.read(1 << 22):
                out.write(chunk)
        # The track line is kept for browsers and skipped by the index.
        pysam.tabix_index(str(tmp_gz), seq_col=0, start_col=1, end_col=2, zerobased=True, line_skip=1, force=True)
        commit(tmp_gz, gz)
        commit(tmp_tbi, tbi)  # after the data, so the index is never older than it
    finally:
        tmp_gz.unlink(missing_ok=True)
        tmp_tbi.unlink(missing_ok=True)
    return [gz, tbi]
