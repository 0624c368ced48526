"""BED6 records with name and strand, for commands that need to know which feature a line is (task building).

Coordinates are 0-based half-open; a bad line is a DataError naming file and line.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

from hnet_genomics.errors import DataError


@dataclass(frozen=True)
class BedRecord:
    chrom: str
    start: int
    end: int
    name: str
    strand: str  # "+", "-" or "." when the file has no strand column


def read_bed6(path: str | Path) -> list[BedRecord]:
    """Every interval of a BED3+ file (name and strand when present), in file order."""
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        text = raw.decode()
    except (OSError, UnicodeDecodeError, gzip.BadGzipFile) as e:
        raise DataError(f"{path}: cannot read BED ({getattr(e, 'strerror', None) or e})") from None
    records = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith(("#", "track", "browser")):
            continue
        f = line.split("\t") if "\t" in line else line.split()
        if len(f) < 3:
            raise DataError(f"{path}:{lineno}: a BED line needs chrom, start and end, got {len(f)} field(s)")
        try:
            start, end = int(f[1]), int(f[2])
        except ValueError:
            raise DataError(f"{path}:{lineno}: start '{f[1]}' and end '{f[2]}' must be integers") from None
        if start < 0 or end <= start:
            raise DataError(f"{path}:{lineno}: invalid interval {f[0]}:{start}-{end} (need 0 <= start < end)")
        strand = f[5].strip() if len(f) > 5 else "."
        if strand not in ("+", "-", "."):
            raise DataError(f"{path}:{lineno}: strand must be +, - or ., got '{strand}'")
        records.append(BedRecord(f[0], start, end, f[3] if len(f) > 3 else "", strand))
    return records
