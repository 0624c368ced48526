"""Genomic intervals to export: whole FASTA records or the validated, merged intervals of a BED file.

Regions come out sorted the way ``sort -k1,1 -k2,2n`` sorts them (chromosome names byte-wise, then start),
because that is the order bedToBigBed, tabix and the UCSC tools expect of the tracks written from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hnet_genomics.data.bed import check_in_genome, read_bed


@dataclass(frozen=True, order=True)
class Region:
    """A 0-based half-open interval ``[start, end)`` on ``chrom``."""

    chrom: str
    start: int
    end: int

    def __len__(self) -> int:
        return self.end - self.start

    def __str__(self) -> str:
        return f"{self.chrom}:{self.start}-{self.end}"


def whole_records(sizes: dict[str, int]) -> list[Region]:
    """Every non-empty record of a genome, in sorted order."""
    return sorted(Region(chrom, 0, n) for chrom, n in sizes.items() if n > 0)


def read_regions(bed: str | Path, sizes: dict[str, int], fasta: str | Path = "the FASTA") -> list[Region]:
    """Read BED intervals (plain, gzip or bgzip), check them against the genome and merge overlaps so no
    base is exported twice."""
    regions = []
    for rec in read_bed(bed):
        check_in_genome(rec, sizes, bed, fasta)
        regions.append(Region(rec.chrom, rec.start, rec.end))
    return merge_overlaps(regions)


def merge_overlaps(regions: list[Region]) -> list[Region]:
    """Sort and merge overlapping intervals; touching ones stay separate, each keeps its own tiling."""
    merged: list[Region] = []
    for r in sorted(regions):
        if merged and merged[-1].chrom == r.chrom and r.start < merged[-1].end:
            last = merged.pop()
            r = Region(r.chrom, last.start, max(last.end, r.end))
        merged.append(r)
    return merged
