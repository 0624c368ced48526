"""Train / valid / test regions of a genome.

Three sources, in order of precedence: (a) a BED whose 4th column is the split, the Basenji/Enformer
``sequences_human.bed`` format that HyenaDNA and Caduceus pretrain on; (b) whole held-out chromosomes
(``valid_chroms`` / ``test_chroms``); (c) for small genomes, the last ``test_fraction`` of every record
is test and the ``valid_fraction`` before it is valid. Splits are contiguous blocks rather than random
windows so that neighbouring, highly correlated sequence cannot leak across them. "test" is reserved for
the final report: model selection uses "valid" only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NamedTuple, Protocol

from hnet_genomics.atomic import atomic_path
from hnet_genomics.config import DataConfig
from hnet_genomics.data.bed import check_in_genome, read_bed
from hnet_genomics.errors import ConfigError, DataError

SPLITS = ("train", "valid", "test")


class Interval(NamedTuple):
    """0-based half-open region of one record."""

    chrom: str
    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start


class SizedSource(Protocol):
    """Anything with record sizes: ``Genome`` or ``TextCorpus``."""

    path: Path
    sizes: dict[str, int]


def read_split_bed(path: str | Path, genome: SizedSource) -> dict[str, list[Interval]]:
    """Parse ``chrom start end split`` lines (more columns allowed; unsorted and overlapping accepted)."""
    splits: dict[str, list[Interval]] = {s: [] for s in SPLITS}
    for rec in read_bed(path, min_columns=4, columns="4 columns 'chrom start end split'"):
        check_in_genome(rec, genome.sizes, path, genome.path)
        split = rec.fields[3]
        if split not in splits:
            raise DataError(f"{rec.where(path)}: split column value '{split}' is not one of {', '.join(SPLITS)}")
        splits[split].append(Interval(rec.chrom, rec.start, rec.end))
    return splits


def write_split_bed(splits: Mapping[str, Iterable[Interval]], path: str | Path) -> None:
    """Basenji format (tab-separated ``chrom start end split``), written atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            for split in SPLITS:
                for iv in splits.get(split, ()):
                    f.write(f"{iv.chrom}\t{iv.start}\t{iv.end}\t{split}\n")


def tile_intervals(intervals: Iterable[Interval], seq_len: int, sizes: Mapping[str, int]) -> list[Interval]:
    """Cut intervals into windows of exactly ``seq_len``, clamped inside their chromosome.

    A short interval (or the remainder of a long one) is widened around its centre as HyenaDNA does with
    Basenji regions, then shifted back inside the chromosome; records shorter than ``seq_len`` yield nothing.
    """
    out: list[Interval] = []
    for iv in intervals:
        size = sizes[iv.chrom]
        if size < seq_len:
            continue
        for s in range(iv.start, iv.end, seq_len):
            e = min(s + seq_len, iv.end)
            mid = (s + e) // 2
            start = min(max(mid - seq_len // 2, 0), size - seq_len)
            out.append(Interval(iv.chrom, start, start + seq_len))
    return out


def _check_fractions(cfg: DataConfig) -> None:
    for name in ("valid_fraction", "test_fraction"):
        value = getattr(cfg, name)
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"data.{name} must be in [0, 1), got {value}")
    if cfg.valid_fraction + cfg.test_fraction >= 1.0:
        raise ConfigError("data.valid_fraction + data.test_fraction must leave some sequence for training")


def _held_out_chroms(genome: SizedSource, cfg: DataConfig) -> dict[str, list[Interval]]:
    for key in ("valid_chroms", "test_chroms"):
        for chrom in getattr(cfg, key):
            if chrom not in genome.sizes:
                raise ConfigError(f"data.{key}: '{chrom}' is not a record of {genome.path}")
    both = set(cfg.valid_chroms) & set(cfg.test_chroms)
    if both:
        raise ConfigError(f"data.valid_chroms and data.test_chroms share {sorted(both)}")
    role = {**{c: "valid" for c in cfg.valid_chroms}, **{c: "test" for c in cfg.test_chroms}}
    splits: dict[str, list[Interval]] = {s: [] for s in SPLITS}
    for chrom, size in genome.sizes.items():
        splits[role.get(chrom, "train")].append(Interval(chrom, 0, size))
    return splits


def _fraction_split(genome: SizedSource, cfg: DataConfig) -> dict[str, list[Interval]]:
    _check_fractions(cfg)
    splits: dict[str, list[Interval]] = {s: [] for s in SPLITS}
    for chrom, size in genome.sizes.items():
        test_start = size - round(size * cfg.test_fraction)
        valid_start = test_start - round(size * cfg.valid_fraction)
        for split, start, end in (
            ("train", 0, valid_start),
            ("valid", valid_start, test_start),
            ("test", test_start, size),
        ):
            if end > start:
                splits[split].append(Interval(chrom, start, end))
    return splits


def make_splits(
    genome: SizedSource, data_cfg: DataConfig, intervals_bed: str | Path | None = None, seq_len: int | None = None
) -> dict[str, list[Interval]]:
    """Regions per split from the first source that is configured (BED, held-out chromosomes, fractions).

    ``intervals_bed`` defaults to ``data_cfg.intervals``. With ``seq_len``, BED regions are tiled into
    windows of exactly that length (the Basenji/HyenaDNA convention); the other sources stay whole.
    """
    bed = intervals_bed if intervals_bed is not None else data_cfg.intervals
    if bed is not None:
        splits = read_split_bed(bed, genome)
        if seq_len is not None:
            splits = {k: tile_intervals(v, seq_len, genome.sizes) for k, v in splits.items()}
            if not splits["train"]:
                raise DataError(
                    f"{bed}: window length {seq_len:,} is longer than every chromosome holding a train interval"
                )
    elif data_cfg.valid_chroms or data_cfg.test_chroms:
        splits = _held_out_chroms(genome, data_cfg)
    else:
        splits = _fraction_split(genome, data_cfg)
    if not splits["train"]:
        raise DataError(f"{bed or genome.path}: the train split is empty")
    return splits
