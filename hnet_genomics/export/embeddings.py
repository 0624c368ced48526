"""``embed`` input and output: sequences from FASTA, CSV/TSV or BED + FASTA in; ``.npy`` + index or Parquet out.

Inputs: a FASTA (plain or bgzip; every record, in file order, read through its faidx index so a genome
does not have to fit in memory), a CSV/TSV with a ``sequence`` column (``name`` and ``label`` optional; the
task reader of ``finetune``), or a BED of intervals with ``--fasta`` (one embedding per BED line, in file
order, named by column 4 when there is one; overlapping lines are kept apart; a ``-`` in column 6 embeds the
reverse complement).

Outputs: ``OUT.npy`` (float32, one row per sequence) with ``OUT.tsv`` (row, name, chrom, start, end, length
[, strand for a BED] [, label]), or ``OUT.parquet`` holding both (the vector in a fixed-size list column
``embedding``). With per-chunk output, ``OUT.chunks.npy`` + ``OUT.chunks.tsv`` (or ``OUT.chunks.parquet``)
hold every chunk: the row of its sequence, its coordinates (genomic for FASTA records and BED intervals,
within the sequence for CSV rows) and its vector. Every file appears under its final name only once complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hnet_genomics.atomic import atomic_path
from hnet_genomics.errors import ConfigError, DataError
from hnet_genomics.export.regions import Region
from hnet_genomics.inference.embeddings import ItemEmbedding
from hnet_genomics.options import check_output_file

OUT_SUFFIXES = (".npy", ".parquet")
BED_SUFFIXES = (".bed", ".bed.gz")


class InMemorySequences:
    """Sequences held in memory behind the ``fetch``/``sizes``/``path`` interface of ``Genome``."""

    def __init__(self, sequences: list[bytes], source: str) -> None:
        self.path = source
        self._seqs = {str(i): s for i, s in enumerate(sequences)}
        self.sizes = {k: len(s) for k, s in self._seqs.items()}

    def fetch(self, chrom: str, start: int, end: int) -> bytes:
        return self._seqs[chrom][start:end]


@dataclass
class EmbeddingInput:
    source: object  # Genome or InMemorySequences
    spans: list[Region]
    names: list[str]
    chroms: list[str]  # what the index calls each span's sequence
    labels: list[str] | None = None
    strands: list[str] | None = None  # per span "+", "-" or "." (BED input only)


def read_embedding_input(path: str | Path, fasta: str | Path | None = None) -> EmbeddingInput:
    """The sequences to embed, by the input's suffix (module docstring)."""
    from hnet_genomics.data.genome import Genome
    from hnet_genomics.data.labelled import TABLE_SUFFIXES, read_table

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file" if not path.exists() else f"{path}: not a regular file")
    name = path.name.lower()
    if name.endswith(BED_SUFFIXES):
        if fasta is None:
            raise ConfigError(f"--input {path}: a BED file needs --fasta, the genome its intervals are on")
        genome = Genome(fasta)
        spans, names, strands = read_bed_items(path, genome.sizes, fasta)
        return EmbeddingInput(genome, spans, names, [s.chrom for s in spans], strands=strands)
    if fasta is not None:
        raise ConfigError("--fasta goes with a BED --input only (FASTA and CSV inputs carry their sequences)")
    if name.endswith(TABLE_SUFFIXES):
        table = read_table(path, require_label=False)
        source = InMemorySequences(table.sequences, str(path))
        spans = [Region(k, 0, n) for k, n in source.sizes.items()]
        labels = table.labels if any(table.labels) else None
        return EmbeddingInput(source, spans, table.names, table.names, labels)
    genome = Genome(path)
    spans = [Region(c, 0, n) for c, n in genome.sizes.items()]
    return EmbeddingInput(genome, spans, list(genome.sizes), list(genome.sizes))


def read_bed_items(path: Path, sizes: dict[str, int], fasta) -> tuple[list[Region], list[str], list[str]]:
    """Every BED line in file order (the one BED reader: plain, gzip or bgzip), checked against the genome, its
    name (column 4 or chrom:start-end) and strand (column 6: +, - or ., "." when absent)."""
    from hnet_genomics.data.bed import check_in_genome, read_bed

    spans, names, strands = [], [], []
    for r in read_bed(path):
        check_in_genome(r, sizes, path, fasta)
        if r.strand not in ("+", "-", "."):
            raise DataError(f"{r.where(path)}: strand (column 6) must be +, - or ., got '{r.strand}'")
        spans.append(Region(r.chrom, r.start, r.end))
        names.append(r.name or f"{r.chrom}:{r.start}-{r.end}")
        strands.append(r.strand)
    return spans, names, strands


def output_kind(out: str | Path) -> str:
    suffix = next((s for s in OUT_SUFFIXES if str(out).endswith(s)), None)
    if suffix is None:
        raise ConfigError(f"--out {out}: name the output OUT.npy (with an OUT.tsv index) or OUT.parquet")
    check_output_file(out)
    if suffix == ".parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ConfigError(
                "--out *.parquet needs pyarrow (pip install pyarrow, or the [parquet] extra); or write OUT.npy"
            ) from None
    return suffix


def derived_files(out: str | Path, per_chunk: bool) -> list[Path]:
    """The files written beside ``OUT.npy`` / ``OUT.parquet``: the index TSV, and the per-chunk table."""
    suffix = output_kind(out)
    stem = _stem(Path(out), suffix)
    files = [Path(f"{stem}.tsv")] if suffix == ".npy" else []
    if per_chunk:
        files += [Path(f"{stem}.chunks{suffix}")] + ([Path(f"{stem}.chunks.tsv")] if suffix == ".npy" else [])
    return files


def _stem(out: Path, suffix: str) -> str:
    return str(out)[: -len(suffix)]


def write_embeddings(items: list[ItemEmbedding], inp: EmbeddingInput, out: str | Path) -> list[Path]:
    """The pooled vectors and their index (and the per-chunk table when the items carry chunks)."""
    out = Path(out)
    suffix = output_kind(out)
    matrix = np.stack([it.vector for it in items]).astype(np.float32)
    index = {
        "row": np.arange(len(items)),
        "name": inp.names,
        "chrom": inp.chroms,
        "start": [it.span.start for it in items],
        "end": [it.span.end for it in items],
        "length": [it.span.end - it.span.start for it in items],
    }
    if inp.strands is not None:
        index["strand"] = inp.strands
    if inp.labels is not None:
        index["label"] = inp.labels
    written = _write_table(matrix, index, _stem(out, suffix), suffix)
    if items and items[0].chunk_vectors is not None:
        counts = []
        for it in items:
            assert it.chunk_starts is not None  # embed_spans gives every item its chunks, or none of them
            counts.append(len(it.chunk_starts))
        chunks = {
            "row": np.repeat(np.arange(len(items)), counts),
            "name": np.repeat(np.array(inp.names, dtype=object), counts),
            "chrom": np.repeat(np.array(inp.chroms, dtype=object), counts),
            "start": np.concatenate([it.chunk_starts for it in items]),
            "end": np.concatenate([it.chunk_ends for it in items]),
        }
        written += _write_table(
            np.concatenate([it.chunk_vectors for it in items]), chunks, _stem(out, suffix) + ".chunks", suffix
        )
    return written


def _write_table(matrix: np.ndarray, index: dict, stem: str, suffix: str) -> list[Path]:
    import pandas as pd

    frame = pd.DataFrame(index)
    if suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        flat = pa.array(matrix.reshape(-1), type=pa.float32())
        table = table.append_column("embedding", pa.FixedSizeListArray.from_arrays(flat, matrix.shape[1]))
        with atomic_path(f"{stem}.parquet") as tmp:
            pq.write_table(table, str(tmp))
        return [Path(f"{stem}.parquet")]
    with atomic_path(f"{stem}.npy") as tmp:
        with open(tmp, "wb") as f:
            np.save(f, matrix)
    with atomic_path(f"{stem}.tsv") as tmp:
        frame.to_csv(tmp, sep="\t", index=False)
    return [Path(f"{stem}.npy"), Path(f"{stem}.tsv")]
