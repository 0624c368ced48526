"""Readers for labelled-sequence tasks in the layouts genomics benchmarks ship in.

Every reader returns the same ``LabelledSequences`` so the fine-tuning protocol never cares where a task
came from. Each record remembers its ``file:line`` origin: a bad base or label deep inside a 100k-record
benchmark must be reported where the user can find it.

Layouts (chosen by ``read_labelled`` from the path):

- CSV/TSV with a header holding ``sequence`` and ``label`` (and optionally ``name``) columns;
- FASTA (``.fa``, ``.fasta``, ``.fna``, optionally gzipped) with the label in the header, either as the last
  ``|`` field (``>seq17|1``, the Nucleotide Transformer downstream-task files ``<task>/{train,test}.fna``)
  or as a ``label=VALUE`` word (``>chr1:100-300 label=enhancer``);
- a Genomic Benchmarks split directory ``<task>/<split>/<class>/*.txt`` (one sequence per file), as the
  ``genomic-benchmarks`` package writes it;
- Parquet (``.parquet``) with ``sequence`` and ``label`` (and optionally ``name``) columns, as the Hugging Face
  Hub serves its datasets (needs pyarrow: ``pip install 'hnet-genomics[parquet]'``).
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hnet_genomics.data.fasta import IUPAC_BYTES, open_stream
from hnet_genomics.errors import DataError

IUPAC = frozenset(IUPAC_BYTES)
FASTA_SUFFIXES = (".fa", ".fasta", ".fna", ".fa.gz", ".fasta.gz", ".fna.gz")
TABLE_SUFFIXES = (".csv", ".tsv", ".csv.gz", ".tsv.gz")
PARQUET_SUFFIXES = (".parquet",)
SoftMask = Literal["upper", "keep"]


@dataclass(frozen=True)
class LabelledSequences:
    """Sequences (raw bytes, soft-masking already resolved) with their label text and origin."""

    sequences: list[bytes]
    labels: list[str]
    names: list[str]
    origins: list[str]  # "file:line" of each record, for error messages
    source: str

    def __len__(self) -> int:
        return len(self.sequences)

    def subset(self, index: list[int] | range) -> LabelledSequences:
        return LabelledSequences(
            [self.sequences[i] for i in index],
            [self.labels[i] for i in index],
            [self.names[i] for i in index],
            [self.origins[i] for i in index],
            self.source,
        )


def read_labelled(path: str | Path, soft_mask: SoftMask = "upper") -> LabelledSequences:
    """Read a task split from any supported layout, chosen by the path's kind and suffix."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file or directory")
    if p.is_dir():
        return read_genomic_benchmarks_split(p, soft_mask)
    name = p.name.lower()
    if name.endswith(TABLE_SUFFIXES):
        return read_table(p, soft_mask)
    if name.endswith(FASTA_SUFFIXES):
        return read_fasta_labelled(p, soft_mask)
    if name.endswith(PARQUET_SUFFIXES):
        return read_parquet([p], soft_mask)
    raise DataError(
        f"{p}: unknown task file type (expected {', '.join(TABLE_SUFFIXES + FASTA_SUFFIXES + PARQUET_SUFFIXES)} "
        f"or a Genomic Benchmarks split directory <task>/<split>/<class>/*.txt)"
    )


def read_table(path: str | Path, soft_mask: SoftMask = "upper", require_label: bool = True) -> LabelledSequences:
    """CSV/TSV with a header line naming ``sequence``, ``label`` and optionally ``name`` columns (UTF-8, a
    byte-order mark allowed; plain or gzip); without ``require_label`` the label column may be absent (labels
    are then empty)."""
    p = Path(path)
    delimiter = "\t" if ".tsv" in p.name.lower() else ","
    seqs: list[bytes] = []
    labels: list[str] = []
    names: list[str] = []
    origins: list[str] = []
    with _gzip_errors(p) as lines:
        reader = csv.reader(_text_lines(p, lines), delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            raise DataError(f"{p}: empty file (expected a header with 'sequence' and 'label' columns)")
        columns = [h.strip().lower() for h in header]
        missing = [c for c in ("sequence", "label")[: 2 if require_label else 1] if c not in columns]
        if missing:
            raise DataError(f"{p}:1: header {header} lacks column(s) {missing}")
        i_seq = columns.index("sequence")
        i_lab = columns.index("label") if "label" in columns else None
        i_name = columns.index("name") if "name" in columns else None
        for row in reader:
            line = reader.line_num
            if not row or all(not f.strip() for f in row):
                continue
            if len(row) != len(columns):
                raise DataError(f"{p}:{line}: {len(row)} fields, header has {len(columns)}")
            origin = f"{p}:{line}"
            seqs.append(_clean(row[i_seq].strip().encode("ascii", "replace"), origin, soft_mask))
            label = row[i_lab] if i_lab is not None else ""  # absent only without require_label
            labels.append(_label(label, origin) if require_label else label.strip())
            names.append(row[i_name].strip() if i_name is not None else f"{p.stem}_{len(names)}")
            origins.append(origin)
    return _nonempty(LabelledSequences(seqs, labels, names, origins, str(p)))


def read_parquet(paths: list[Path], soft_mask: SoftMask = "upper") -> LabelledSequences:
    """Parquet file(s) with ``sequence`` and ``label`` (and optionally ``name``) columns, read in the order given
    (the shards ``0000.parquet``, ``0001.parquet``... of one split); a record's origin is ``file row N``."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{paths[0]}: reading Parquet needs pyarrow (pip install 'hnet-genomics[parquet]')") from None
    seqs: list[bytes] = []
    labels: list[str] = []
    names: list[str] = []
    origins: list[str] = []
    for p in paths:
        try:
            table = pq.read_table(p)
        except Exception as e:  # pyarrow raises its own error types for a damaged or foreign file
            raise DataError(f"{p}: not a readable Parquet file ({e})") from None
        columns = {c.strip().lower(): c for c in table.column_names}
        missing = [c for c in ("sequence", "label") if c not in columns]
        if missing:
            raise DataError(f"{p}: columns {table.column_names} lack {missing}")
        col_seq = table.column(columns["sequence"]).to_pylist()
        col_lab = table.column(columns["label"]).to_pylist()
        col_name = table.column(columns["name"]).to_pylist() if "name" in columns else None
        for i, (seq, lab) in enumerate(zip(col_seq, col_lab)):
            origin = f"{p} row {i + 1}"
            if not isinstance(seq, str):
                raise DataError(f"{origin}: sequence is {type(seq).__name__}, expected text")
            seqs.append(_clean(seq.strip().encode("ascii", "replace"), origin, soft_mask))
            labels.append(_label("" if lab is None else str(lab), origin))
            names.append(str(col_name[i]) if col_name is not None else f"{p.stem}_{len(names)}")
            origins.append(origin)
    return _nonempty(
        LabelledSequences(seqs, labels, names, origins, str(paths[0].parent if len(paths) > 1 else paths[0]))
    )


def read_fasta_labelled(path: str | Path, soft_mask: SoftMask = "upper") -> LabelledSequences:
    """FASTA whose header carries the label (``>name|label`` or ``>name ... label=VALUE``)."""
    p = Path(path)
    seqs, labels, names, origins = [], [], [], []
    for line_no, header, seq in _fasta_records(p):
        origin = f"{p}:{line_no}"
        name, label = _split_header(header, origin)
        seqs.append(_clean(seq, origin, soft_mask))
        labels.append(label)
        names.append(name)
        origins.append(origin)
    return _nonempty(LabelledSequences(seqs, labels, names, origins, str(p)))


def read_genomic_benchmarks_split(split_dir: str | Path, soft_mask: SoftMask = "upper") -> LabelledSequences:
    """``<task>/<split>/<class>/*.txt``: the label is the class directory name; files read in sorted order."""
    d = Path(split_dir)
    classes = sorted(c.name for c in d.iterdir() if c.is_dir() and not c.name.startswith("."))
    if not classes:
        raise DataError(f"{d}: no class directories (expected <task>/<split>/<class>/*.txt)")
    seqs, labels, names, origins = [], [], [], []
    for cls in classes:
        for f in sorted((d / cls).glob("*.txt")):
            origin = f"{f}:1"
            text = f.read_bytes().strip()
            if b"\n" in text:
                raise DataError(f"{f}:2: expected the whole sequence on line 1")
            seqs.append(_clean(text, origin, soft_mask))
            labels.append(cls)
            names.append(f"{cls}/{f.stem}")
            origins.append(origin)
    return _nonempty(LabelledSequences(seqs, labels, names, origins, str(d)))


def _clean(seq: bytes, origin: str, soft_mask: SoftMask) -> bytes:
    if not seq:
        raise DataError(f"{origin}: empty sequence")
    bad = set(seq) - IUPAC
    if bad:
        ch = chr(seq[next(i for i, b in enumerate(seq) if b in bad)])
        raise DataError(f"{origin}: character {ch!r} is not an IUPAC nucleotide code")
    return seq.upper() if soft_mask == "upper" else seq


def _label(text: str, origin: str) -> str:
    label = text.strip()
    if not label:
        raise DataError(f"{origin}: empty label")
    return label


def _split_header(header: str, origin: str) -> tuple[str, str]:
    words = header.split()
    for w in words[1:]:
        if w.startswith("label="):
            return words[0], _label(w[len("label=") :], origin)
    first = words[0] if words else ""
    if "|" in first:
        name, label = first.rsplit("|", 1)
        return name, _label(label, origin)
    if "|" in header:  # '>chr1 100 200|1': the Nucleotide Transformer files' loader takes the text after the last '|'
        name, label = header.rsplit("|", 1)
        return name.strip(), _label(label, origin)
    raise DataError(f"{origin}: FASTA header '>{header}' carries no label (expected '>name|label' or 'label=VALUE')")


def _fasta_records(path: Path) -> Iterator[tuple[int, str, bytes]]:
    header: str | None = None
    header_line = 0
    chunks: list[bytes] = []
    with _gzip_errors(path) as fh:
        for line_no, raw in enumerate(fh, start=1):
            line = raw.rstrip(b"\r\n")
            if line.startswith(b">"):
                if header is not None:
                    yield header_line, header, b"".join(chunks)
                header, header_line, chunks = line[1:].decode("utf-8", "replace").strip(), line_no, []
            elif header is None:
                if line.strip():
                    raise DataError(f"{path}:{line_no}: sequence data before the first '>' header")
            else:
                chunks.append(line.strip())
    if header is not None:
        yield header_line, header, b"".join(chunks)


@contextlib.contextmanager
def _gzip_errors(path: Path) -> Iterator[Iterator[bytes]]:
    """The file's lines as bytes; a truncated or corrupt gzip stream becomes a DataError naming the line."""
    counter = _LineCounter()
    try:
        with open_stream(path) as fh:
            yield counter.count(fh)
    except (EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DataError(f"{path}:{counter.lines + 1}: truncated or corrupt gzip data ({e})") from None


class _LineCounter:
    def __init__(self) -> None:
        self.lines = 0

    def count(self, lines: Iterator[bytes]) -> Iterator[bytes]:
        for line in lines:
            self.lines += 1
            yield line


def _text_lines(path: Path, lines: Iterator[bytes]) -> Iterator[str]:
    """UTF-8 lines (a leading byte-order mark dropped), each decoded on its own so an error names its line."""
    for line_no, raw in enumerate(lines, start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(
                f"{path}:{line_no}: byte 0x{raw[e.start]:02x} is not UTF-8 text (save the file as UTF-8)"
            ) from None
        yield text.removeprefix("\ufeff") if line_no == 1 else text


def _nonempty(data: LabelledSequences) -> LabelledSequences:
    if not data.sequences:
        raise DataError(f"{data.source}: no labelled sequences")
    return data
