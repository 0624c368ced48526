"""The one BED reader: plain, gzip or bgzip (tabix) files, one set of rules, errors that name file and line.

Split files, export regions, annotations and our own chunk tracks are all read here, so a BED accepted by one
command is accepted by every other. Rules: blank, ``#``, ``track`` and ``browser`` lines are skipped; fields
are tab-separated (whitespace-separated when a line has no tab, as hand-written files often are); start and
end are integers with ``0 <= start < end`` (BED coordinates are 0-based, half-open); text must be UTF-8.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Container, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from hnet_genomics.errors import DataError

HEADER_PREFIXES = ("#", "track", "browser")


@dataclass(frozen=True)
class BedRecord:
    chrom: str
    start: int
    end: int
    fields: tuple[str, ...]  # every column, the first three included
    line: int  # 1-based line number in the (decompressed) file

    def where(self, path: str | Path) -> str:
        return f"{path}:{self.line}"

    @property
    def name(self) -> str:
        return self.fields[3] if len(self.fields) > 3 else ""

    @property
    def strand(self) -> str:
        """``+``, ``-``, or ``.`` when the line has no strand column."""
        return self.fields[5].strip() if len(self.fields) > 5 else "."


def _open(path: Path):
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


def iter_bed(path: str | Path, min_columns: int = 3, columns: str = "chrom, start and end") -> Iterator[BedRecord]:
    """Records of a BED file in file order; ``columns`` names what a line needs when it has too few."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a BED file")
    lineno = 0
    try:
        with _open(path) as f:
            for lineno, raw in enumerate(f, 1):
                if b"\x00" in raw:
                    raise DataError(f"{path}:{lineno}: binary data (NUL byte), not a BED file")
                try:
                    line = raw.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError as e:
                    raise DataError(
                        f"{path}:{lineno}: byte 0x{raw[e.start]:02x} is not UTF-8 text; is this a BED file?"
                    ) from None
                if not line.strip() or line.startswith(HEADER_PREFIXES):
                    continue
                fields = tuple(line.split("\t") if "\t" in line else line.split())
                if len(fields) < min_columns:
                    raise DataError(f"{path}:{lineno}: a BED line needs {columns}, got {len(fields)} field(s)")
                try:
                    start, end = int(fields[1]), int(fields[2])
                except ValueError:
                    raise DataError(
                        f"{path}:{lineno}: start '{fields[1]}' and end '{fields[2]}' must be integers"
                    ) from None
                if not 0 <= start < end:
                    kind = "empty" if start == end else "invalid"
                    raise DataError(
                        f"{path}:{lineno}: {kind} interval {fields[0]}:{start}-{end} (need "
                        f"0 <= start < end: BED is 0-based, end exclusive)"
                    )
                yield BedRecord(fields[0], start, end, fields, lineno)
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DataError(f"{path}:{lineno + 1}: truncated or corrupt gzip data ({e})") from None
    except PermissionError:
        raise DataError(f"{path}: not readable (permission denied)") from None


def read_bed(path: str | Path, min_columns: int = 3, columns: str = "chrom, start and end") -> list[BedRecord]:
    """Every record; a file without any is an error (only blank, comment or header lines)."""
    records = list(iter_bed(path, min_columns, columns))
    if not records:
        raise DataError(f"{path}: no intervals (only blank, comment or header lines)")
    return records


def read_bed6(path: str | Path) -> list[BedRecord]:
    """Every record with its name and strand checked (for commands that need to know which feature a line is)."""
    records = read_bed(path)
    for r in records:
        if r.strand not in ("+", "-", "."):
            raise DataError(f"{r.where(path)}: strand must be +, - or ., got '{r.strand}'")
    return records


def chrom_hint(chrom: str, sizes: Container[str]) -> str:
    """' (did you mean ...?)' when the names differ only by UCSC's 'chr' prefix (chr1 vs 1, chrM vs MT)."""
    alternatives = [chrom[3:] if chrom.startswith("chr") else f"chr{chrom}"]
    alternatives += {"chrM": ["MT"], "MT": ["chrM"], "M": ["chrM"]}.get(chrom, [])
    hit = next((a for a in alternatives if a in sizes), None)
    return f"; did you mean '{hit}'? (UCSC and Ensembl name chromosomes differently)" if hit else ""


def check_in_genome(record: BedRecord, sizes: Mapping[str, int], path: str | Path, genome: str | Path) -> None:
    """The record's chromosome is a record of the genome and the interval lies inside it."""
    size = sizes.get(record.chrom)
    if size is None:
        known = ", ".join(list(sizes)[:5]) + (", ..." if len(sizes) > 5 else "")
        raise DataError(
            f"{record.where(path)}: chromosome '{record.chrom}' is not in {genome} (records: {known})"
            f"{chrom_hint(record.chrom, sizes)}"
        )
    if record.end > size:
        raise DataError(
            f"{record.where(path)}: interval {record.chrom}:{record.start}-{record.end} runs past the "
            f"end of '{record.chrom}' (length {size:,})"
        )
