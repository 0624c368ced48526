"""Where a benchmark suite keeps one task's train and test splits on disk, in the suites' own layouts.

- ``class-folders`` (Genomic Benchmarks, as its ``genomic-benchmarks`` package writes a task):
  ``<task>/train/<class>/<id>.txt`` and ``<task>/test/<class>/<id>.txt``, one sequence per file, the label being
  the class folder's name (``data/labelled.py`` reads them in sorted order).
- ``split-files`` (Nucleotide Transformer downstream tasks, as the Hugging Face Hub serves them):
  ``<task>/train.fna`` and ``<task>/test.fna`` with ``>name|label`` headers; the same splits as CSV/TSV or
  Parquet with ``sequence`` and ``label`` columns (``<task>/train.csv``, ``<task>/train.parquet``), or the Hub's
  Parquet conversion, a folder of shards ``<task>/train/0000.parquet``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from hnet_genomics.data.labelled import (
    FASTA_SUFFIXES,
    PARQUET_SUFFIXES,
    TABLE_SUFFIXES,
    LabelledSequences,
    SoftMask,
    read_genomic_benchmarks_split,
    read_labelled,
    read_parquet,
)
from hnet_genomics.errors import DataError

Layout = Literal["class-folders", "split-files"]
LAYOUTS: tuple[str, ...] = ("class-folders", "split-files")
SPLITS = ("train", "test")
SPLIT_SUFFIXES = FASTA_SUFFIXES + TABLE_SUFFIXES + PARQUET_SUFFIXES


def split_path(task_dir: Path, split: str, layout: Layout) -> Path:
    """The file or folder holding ``split`` of the task in ``task_dir``; a DataError says what was expected."""
    if layout == "class-folders":
        folder = task_dir / split
        if not folder.is_dir():
            raise DataError(f"{folder}: no such folder (a Genomic Benchmarks task holds {split}/<class>/<id>.txt)")
        return folder
    found = [task_dir / f"{split}{suffix}" for suffix in SPLIT_SUFFIXES if (task_dir / f"{split}{suffix}").is_file()]
    shards = task_dir / split
    if shards.is_dir() and sorted(shards.glob("*.parquet")):
        found.append(shards)
    if not found:
        raise DataError(
            f"{task_dir}: no {split} split (expected {split}.fna, {split}.csv, {split}.parquet or {split}/*.parquet)"
        )
    if len(found) > 1:
        raise DataError(f"{task_dir}: {split} split found twice ({', '.join(p.name for p in found)}); keep one")
    return found[0]


def read_split(task_dir: Path, split: str, layout: Layout, soft_mask: SoftMask = "upper") -> LabelledSequences:
    """One split of one suite task, whatever the layout."""
    path = split_path(task_dir, split, layout)
    if layout == "class-folders":
        return read_genomic_benchmarks_split(path, soft_mask)
    if path.is_dir():
        return read_parquet(sorted(path.glob("*.parquet")), soft_mask)
    return read_labelled(path, soft_mask)


def task_present(task_dir: Path, layout: Layout) -> bool:
    """Both splits are where ``layout`` puts them (what ``--fetch`` checks before downloading)."""
    try:
        for split in SPLITS:
            split_path(task_dir, split, layout)
    except DataError:
        return False
    return True
