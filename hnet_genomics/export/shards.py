"""Whole-genome export as independent jobs: split the regions into shards, export each, merge the tracks.

Export speed per core is bounded by the model (benchmarks/results/boundary_export-cpu.md), so a genome is
spread over jobs instead (a Snakemake/SLURM array in the pipeline). Shards are whole regions, contiguous in
sorted order and balanced by length, so each region is exported exactly as an unsharded run would export it
and the merge is a concatenation: merged tracks equal the unsharded ones line for line.
"""

from __future__ import annotations

import re
from pathlib import Path

from hnet_genomics.atomic import output_dir
from hnet_genomics.errors import ConfigError, DataError
from hnet_genomics.export.regions import Region
from hnet_genomics.export.tracks import (
    CHUNK_COLOURS,
    build_track_files,
    data_lines,
    stage_paths,
    temp_path,
    track_lines,
    write_chrom_sizes,
)


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/8"`` -> (2, 8): the second of eight shards (1-based, as in a job array)."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m or not 1 <= int(m[1]) <= int(m[2]):
        raise ConfigError(f"--shard expects K/N with 1 <= K <= N, got '{text}'")
    return int(m[1]), int(m[2])


def select_shard(regions: list[Region], k: int, n: int) -> list[Region]:
    """The regions of shard ``k`` of ``n``: a region goes to the shard holding its midpoint when the sorted
    regions are laid end to end and cut into ``n`` equal lengths (a shard may be empty)."""
    regions = sorted(regions)
    total = sum(len(r) for r in regions)
    picked, before = [], 0
    for r in regions:
        if min(n - 1, (2 * before + len(r)) * n // (2 * total)) == k - 1:
            picked.append(r)
        before += len(r)
    return picked


def read_chrom_sizes(path: str | Path) -> dict[str, int]:
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise DataError(f"{path}: cannot read chrom sizes ({e.strerror})") from None
    sizes = {}
    for lineno, line in enumerate(lines, 1):
        fields = line.split("\t")
        if len(fields) != 2 or not fields[1].isdigit():
            raise DataError(f"{path}:{lineno}: expected 'name<TAB>length', got '{line}'")
        sizes[fields[0]] = int(fields[1])
    return sizes


def _stage_count(prefix: str) -> int:
    n = 0
    while stage_paths(prefix, n + 1)["bed"].exists():
        n += 1
    if n == 0:
        raise DataError(f"{stage_paths(prefix, 1)['bed']}: missing; shards must be exported with the bed format")
    return n


def _first_and_last(bed: Path) -> tuple[list[str], list[str]] | None:
    """First and last chunk of a shard's BED without reading the (possibly genome-sized) middle."""
    first = next(data_lines(bed), None)
    if first is None:
        return None
    with bed.open("rb") as f:
        f.seek(0, 2)
        f.seek(max(0, f.tell() - 4096))
        last = f.read().decode().rstrip("\n").rsplit("\n", 1)[-1]
    return first, last.split("\t")


def _ordered(shards: list[str], track_of=lambda shard: stage_paths(shard, 1)["bed"]) -> list[str]:
    """Shards with data lines in ``track_of(shard)`` (default: stage-1 chunks), in genome order; interleaved
    or overlapping shards are refused."""
    spans = {}
    for shard in shards:
        span = _first_and_last(track_of(shard))
        if span:
            spans[shard] = span
    order = sorted(spans, key=lambda s: (spans[s][0][0], int(spans[s][0][1])))
    for a, b in zip(order, order[1:]):
        (a_chrom, _, a_end), (b_chrom, b_start) = spans[a][1][:3], spans[b][0][:2]
        if a_chrom > b_chrom or (a_chrom == b_chrom and int(a_end) > int(b_start)):
            raise DataError(
                f"{track_of(b)}: its lines overlap or interleave with those of "
                f"{track_of(a)}; merge the shards of one `--shard K/N` series"
            )
    return order


def merge_tracks(shards: list[str | Path], prefix: str | Path, formats: tuple[str, ...]) -> list[Path]:
    """Concatenate the text tracks of ``shards`` (prefixes of ``boundaries --shard`` runs) into ``prefix``
    files and build every requested format from them, as a single ``boundaries`` run would have written."""
    prefixes = [str(s) for s in shards]
    if not prefixes:
        raise ConfigError("merge-tracks: no shards given")
    sizes = read_chrom_sizes(f"{prefixes[0]}.chrom.sizes")
    stages = _stage_count(prefixes[0])
    need_bedgraph = bool({"bedgraph", "bigwig"} & set(formats))
    for shard in prefixes:
        if read_chrom_sizes(f"{shard}.chrom.sizes") != sizes:
            raise DataError(
                f"{shard}.chrom.sizes: differs from {prefixes[0]}.chrom.sizes; shards must come from one genome"
            )
        for s in range(1, stages + 1):
            kinds = ("bed", "bedgraph") if need_bedgraph else ("bed",)
            for kind in kinds:
                if not stage_paths(shard, s)[kind].exists():
                    raise DataError(
                        f"{stage_paths(shard, s)[kind]}: missing (export the shards with --formats bed,bedgraph)"
                    )
        if stage_paths(shard, stages + 1)["bed"].exists():
            raise DataError(f"{shard}: has more chunking stages than {prefixes[0]}; shards must use one model")
    order = _ordered(prefixes)
    with output_dir(Path(prefix).parent):
        written = []
        for s in range(1, stages + 1):
            paths = stage_paths(prefix, s)
            bed_header, bg_header = track_lines(prefix, s, f"{Path(prefix).name} H-Net stage {s}")
            bed_tmp = temp_path(paths["bed"])
            bg_tmp = temp_path(paths["bedgraph"]) if need_bedgraph else None
            try:
                with bed_tmp.open("w") as out:
                    out.write(bed_header)
                    i = 0
                    for shard in order:
                        for fields in data_lines(stage_paths(shard, s)["bed"]):
                            fields[8] = CHUNK_COLOURS[i % 2]  # alternate across shard seams too
                            out.write("\t".join(fields) + "\n")
                            i += 1
                if bg_tmp:
                    with bg_tmp.open("w") as out:
                        out.write(bg_header)
                        for shard in order:
                            with stage_paths(shard, s)["bedgraph"].open() as f:
                                next(f, None)
                                out.writelines(f)
                written += build_track_files(bed_tmp, bg_tmp, paths, sizes, formats)
            finally:
                for tmp in (bed_tmp, bg_tmp):
                    if tmp:
                        tmp.unlink(missing_ok=True)
        written.append(write_chrom_sizes(f"{prefix}.chrom.sizes", sizes))
    return written
