"""FASTA as a byte stream: format sniffing, line-numbered validation and bgzip re-compression.

Random access (``genome.Genome``) needs bgzip or plain text plus a faidx index; everything that must read
a whole file once (validation, ``data prepare``, the HG38 download) streams through here so that a 3 Gb
genome never sits in memory.
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Literal

from hnet_genomics.atomic import atomic_path, commit
from hnet_genomics.data.bgzf import BGZF_EOF  # every BGZF file ends with it: absent = cut short
from hnet_genomics.errors import DataError

Compression = Literal["plain", "gzip", "bgzip"]

IUPAC_CODES = b"ACGTURYSWKMBDHVN"
IUPAC_BYTES = IUPAC_CODES + IUPAC_CODES.lower()
HEAD_BYTES = 1 << 16


def sniff_compression(path: Path) -> Compression:
    """bgzip is gzip with a 'BC' extra field in every member header (SAM/BAM spec, section 4.1)."""
    with open(path, "rb") as f:
        head = f.read(18)
    if not head.startswith(b"\x1f\x8b"):
        return "plain"
    if len(head) >= 14 and head[3] & 4 and head[12:14] == b"BC":
        return "bgzip"
    return "gzip"


def has_bgzf_eof(path: Path) -> bool:
    size = os.path.getsize(path)
    if size < len(BGZF_EOF):
        return False
    with open(path, "rb") as f:
        f.seek(size - len(BGZF_EOF))
        return f.read() == BGZF_EOF


class _Counted(io.RawIOBase):
    """A file whose reads report how many (compressed) bytes were consumed, for a progress bar."""

    def __init__(self, path: Path, on_read) -> None:
        self._f, self._on_read = open(path, "rb"), on_read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._f.readinto(buffer)
        self._on_read(n or 0)
        return n

    def close(self) -> None:
        self._f.close()
        super().close()


def open_stream(path: Path, on_read=None) -> BinaryIO:
    """Decompressed byte stream of a plain, gzip or bgzip file (bgzip is multi-member gzip); ``on_read(n)``
    is told how many bytes of the file itself each read consumed."""
    raw = open(path, "rb") if on_read is None else io.BufferedReader(_Counted(path, on_read), 1 << 20)
    if sniff_compression(path) == "plain":
        return raw
    # typeshed's GzipFile is a BufferedIOBase, not nominally a BinaryIO, though it reads as one
    return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]


def _describe_non_fasta(first: bytes) -> str:
    if b"\x00" in first:
        return "binary file, not FASTA"
    stripped = first.lstrip()
    if stripped[:1] == b"<":
        return "looks like HTML/XML, not FASTA (a failed download?)"
    if stripped[:1] == b"@":
        return "looks like FASTQ, not FASTA (convert reads first, e.g. `seqtk seq -a`)"
    return "not FASTA: the first line must be a header starting with '>'"


class FastaLineChecker:
    """Validates FASTA one line at a time so errors can name the line; keeps only O(records) state."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lineno = 0
        self.records: dict[str, int] = {}  # name -> number of bases, in file order
        self._current: str | None = None
        self._current_line = 0

    def header(self, line: bytes) -> str:
        name = line[1:].split(maxsplit=1)[0].decode("utf-8", "replace") if line[1:].strip() else ""
        if not name:
            raise DataError(f"{self.source}:{self.lineno}: header '>' without a record name")
        if name in self.records:
            raise DataError(f"{self.source}:{self.lineno}: duplicate record name '{name}'")
        return name

    def feed(self, line: bytes) -> tuple[str | None, bytes]:
        """Return ``(record name, header line)`` for a header or ``(None, bases)`` for a sequence line."""
        self.lineno += 1
        line = line.rstrip(b"\r\n")
        if line.startswith(b">"):
            self._close_record()
            name = self.header(line)
            self.records[name] = 0
            self._current, self._current_line = name, self.lineno
            return name, line
        if self._current is None:
            if not line.strip():
                return None, b""
            raise DataError(f"{self.source}:{self.lineno}: {_describe_non_fasta(line)}")
        bad = line.translate(None, IUPAC_BYTES)
        if bad:
            col = next(i for i, c in enumerate(line) if c not in IUPAC_BYTES)
            char = chr(line[col])
            if char == "\x00":
                raise DataError(f"{self.source}:{self.lineno}: binary data (NUL byte) inside a FASTA record")
            raise DataError(f"{self.source}:{self.lineno}: character {char!r} is not an IUPAC nucleotide code")
        self.records[self._current] += len(line)
        return None, line

    def _close_record(self) -> None:
        if self._current is not None and self.records[self._current] == 0:
            raise DataError(f"{self.source}:{self._current_line}: header '>{self._current}' has no sequence")

    def finish(self, complete: bool = True) -> dict[str, int]:
        """``complete=False`` for a prefix of the file, where the last record may continue later."""
        if self._current is None and complete:
            raise DataError(
                f"{self.source}: empty file, no FASTA record"
                if self.lineno == 0
                else f"{self.source}: no FASTA header ('>') in {self.lineno} line(s)"
            )
        if complete:
            self._close_record()
        return self.records


def iter_fasta_lines(path: Path, on_read=None) -> Iterator[tuple[str | None, bytes]]:
    """Validated ``(name, header line)`` / ``(None, bases)`` pairs of the whole file, with clear errors."""
    checker = FastaLineChecker(str(path))
    try:
        with open_stream(path, on_read) as stream:
            for line in stream:
                yield checker.feed(line)
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DataError(f"{path}:{checker.lineno}: truncated or corrupt gzip data ({e})") from None
    checker.finish()


def check_fasta_head(path: Path) -> None:
    """Cheap sanity check of the first 64 KiB so that a wrong file fails at open, not mid-training."""
    if not path.is_file():
        raise DataError(f"{path}: no such file" if not path.exists() else f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file, no FASTA record")
    try:
        with open_stream(path) as stream:
            head = stream.read(HEAD_BYTES)
            at_eof = not stream.read(1)
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DataError(f"{path}: truncated or corrupt gzip data ({e})") from None
    if not head.lstrip():
        raise DataError(f"{path}: empty file, no FASTA record")
    if not head.lstrip().startswith(b">"):
        raise DataError(f"{path}:1: {_describe_non_fasta(head[:256])}")
    lines = head.split(b"\n")
    if not at_eof:
        lines = lines[:-1]  # possibly cut in the middle
    checker = FastaLineChecker(str(path))
    for line in lines:
        checker.feed(line)
    checker.finish(complete=at_eof)


def write_bgzip_fasta(
    src: Path, dest: Path, line_width: int = 80, threads: int = 1, progress: bool = False
) -> dict[str, int]:
    """Validate ``src`` (plain/gzip/bgzip) and write it bgzip-compressed with uniform line width to ``dest``.

    faidx needs equal line lengths within a record, so sequence is re-wrapped; headers are kept verbatim
    apart from line endings. Returns record sizes. ``dest`` is written directly: callers make it atomic.
    ``threads`` compress blocks in parallel; ``progress`` shows a bar over the input file's bytes.
    """
    from tqdm import tqdm

    from hnet_genomics.data.bgzf import BgzfWriter

    if line_width < 1:
        raise DataError(f"line width must be positive, got {line_width}")
    pending = bytearray()

    def flush(out: BgzfWriter, final: bool) -> None:
        n = len(pending) if final else len(pending) // line_width * line_width
        if n:
            out.write(b"\n".join(pending[i : i + line_width] for i in range(0, n, line_width)) + b"\n")
            del pending[:n]

    check_fasta_head(src)
    sizes: dict[str, int] = {}
    bar = tqdm(
        total=os.path.getsize(src),
        unit="B",
        unit_scale=True,
        desc=f"bgzip {Path(src).name}",
        disable=not progress,
        dynamic_ncols=True,
    )
    with bar, BgzfWriter(dest, threads) as out:
        for name, data in iter_fasta_lines(src, bar.update if progress else None):
            if name is not None:
                flush(out, final=True)
                out.write(data + b"\n")
                sizes[name] = 0
            elif data:
                sizes[next(reversed(sizes))] += len(data)
                pending.extend(data)
                if len(pending) >= 1 << 20:
                    flush(out, final=False)
        flush(out, final=True)
    return sizes


def prepare_fasta(
    src: str | Path, out: str | Path, line_width: int = 80, threads: int = 1, progress: bool = False
) -> dict[str, int]:
    """Validated, bgzip-compressed, faidx-indexed copy of a plain/gzip/bgzip FASTA; returns record sizes.

    Index files are moved into place before the FASTA, so a reader never sees the FASTA without them.
    """
    import pysam

    src, out = Path(src), Path(out)
    if out.exists() and src.resolve() == out.resolve():
        raise DataError(f"{out}: output would overwrite the input")
    with atomic_path(out) as tmp:
        sizes = write_bgzip_fasta(src, tmp, line_width, threads, progress)
        try:
            pysam.faidx(str(tmp))
            for suffix in (".fai", ".gzi"):
                commit(f"{tmp}{suffix}", f"{out}{suffix}")
        finally:
            for suffix in (".fai", ".gzi"):
                Path(f"{tmp}{suffix}").unlink(missing_ok=True)
    return sizes
