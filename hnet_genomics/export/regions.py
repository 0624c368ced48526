"""Genomic intervals to export: whole FASTA records or the validated, merged intervals of a BED file.

Regions come out sorted the way ``sort -k1,1 -k2,2n`` sorts them (chromosome names byte-wise, then start),
because that is the order bedToBigBed, tabix and the UCSC tools expect of the tracks written from them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hnet_genomics.errors import DataError

_HEADER_PREFIXES = ("#", "track", "browser")


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
    """Read BED intervals, check them against the genome and merge overlaps so no base is exported twice."""
    bed = Path(bed)
    try:
        text = bed.read_text()
    except OSError as e:
        raise DataError(f"{bed}: cannot read regions ({e.strerror})") from None
    regions = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith(_HEADER_PREFIXES):
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        if len(fields) < 3:
            raise DataError(f"{bed}:{lineno}: a BED line needs chrom, start and end, got {len(fields)} field(s)")
        chrom = fields[0]
        try:
            start, end = int(fields[1]), int(fields[2])
        except ValueError:
            raise DataError(f"{bed}:{lineno}: start '{fields[1]}' and end '{fields[2]}' must be integers") from None
        if chrom not in sizes:
            known = ", ".join(list(sizes)[:5]) + (", ..." if len(sizes) > 5 else "")
            raise DataError(f"{bed}:{lineno}: chromosome '{chrom}' is not in {fasta} (records: {known})")
        if start < 0 or end < start:
            raise DataError(f"{bed}:{lineno}: invalid interval {chrom}:{start}-{end} (need 0 <= start <= end)")
        if start == end:
            raise DataError(f"{bed}:{lineno}: empty region {chrom}:{start}-{end}")
        if end > sizes[chrom]:
            raise DataError(f"{bed}:{lineno}: region {chrom}:{start}-{end} runs off the end of {chrom} "
                            f"(length {sizes[chrom]})")
        regions.append(Region(chrom, start, end))
    if not regions:
        raise DataError(f"{bed}: no regions (only blank, comment or header lines)")
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
