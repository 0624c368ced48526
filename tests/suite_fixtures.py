"""Small benchmark suites written in each suite's own on-disk layout, from real DNA of the embedded human region.

Each task is a real two- or three-class problem: the classes differ by a planted motif (class k carries motif k
once, at a random position, in a real genomic window), so the k-mer baseline and a fine-tuned model can learn
them from a few dozen sequences. The layouts are the suites' own: Genomic Benchmarks writes
``<task>/{train,test}/<class>/<id>.txt`` (one sequence per file), the Nucleotide Transformer tasks
``<task>/{train,test}.fna`` with ``>name|label`` headers (also CSV or Parquet with sequence and label columns).
"""

from __future__ import annotations

import shutil
import sys
import types
from pathlib import Path

import numpy as np

MOTIFS = (b"", b"TATAAAAGGC", b"GGGCGGGGCC")  # class 0: background only; class 1, 2: a planted motif


def _genome() -> bytes:
    from hnet_genomics.data import demo
    from hnet_genomics.data.genome import Genome

    g = Genome(demo.HUMAN_FASTA)
    chrom = next(iter(g.sizes))
    return g.fetch(chrom, 100_000, 300_000).upper()


def labelled_windows(n: int, length: int, n_classes: int, seed: int) -> list[tuple[bytes, int]]:
    """``n`` windows of real DNA (no N), balanced over the classes, class k carrying MOTIFS[k]."""
    genome = _genome()
    rng = np.random.default_rng(seed)
    out: list[tuple[bytes, int]] = []
    while len(out) < n:
        start = int(rng.integers(0, len(genome) - length))
        window = bytearray(genome[start : start + length])
        if b"N" in window:
            continue
        label = len(out) % n_classes
        motif = MOTIFS[label]
        if motif:
            at = int(rng.integers(0, length - len(motif)))
            window[at : at + len(motif)] = motif
        out.append((bytes(window), label))
    return out


def write_genomic_benchmarks_task(
    root: Path, task: str, classes: list[str], n_train: int = 48, n_test: int = 16, length: int = 64, seed: int = 0
) -> Path:
    """``root/task/{train,test}/<class>/<id>.txt`` as the genomic-benchmarks package writes a task."""
    for split, n, s in (("train", n_train, seed), ("test", n_test, seed + 1000)):
        for i, (seq, label) in enumerate(labelled_windows(n, length, len(classes), s)):
            folder = root / task / split / classes[label]
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{i}.txt").write_text(seq.decode())
    return root / task


def write_nt_task(
    root: Path,
    task: str,
    n_classes: int = 2,
    fmt: str = "fna",
    n_train: int = 48,
    n_test: int = 16,
    length: int = 64,
    seed: int = 0,
) -> Path:
    """``root/task/{train,test}.<fmt>``: fna (``>name|label``, 60 bases a line), csv or parquet."""
    folder = root / task
    folder.mkdir(parents=True, exist_ok=True)
    for split, n, s in (("train", n_train, seed), ("test", n_test, seed + 1000)):
        rows = [
            (f"{task}_{split}_{i}", seq.decode(), label)
            for i, (seq, label) in enumerate(labelled_windows(n, length, n_classes, s))
        ]
        if fmt == "fna":
            text = "".join(
                f">{name}|{label}\n" + "".join(seq[j : j + 60] + "\n" for j in range(0, len(seq), 60))
                for name, seq, label in rows
            )
            (folder / f"{split}.fna").write_text(text)
        elif fmt == "csv":
            (folder / f"{split}.csv").write_text(
                "sequence,label,name\n" + "".join(f"{seq},{label},{name}\n" for name, seq, label in rows)
            )
        elif fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.table(
                {"sequence": [r[1] for r in rows], "name": [r[0] for r in rows], "label": [r[2] for r in rows]}
            )
            pq.write_table(table, folder / f"{split}.parquet")
        else:
            raise ValueError(fmt)
    return folder


# ---------------------------------------------------------------------------------------------------------
# the suites' download packages, replaced by local stand-ins (no network in tests)


def fake_genomic_benchmarks(monkeypatch, source: Path, calls: list, fail: bool = False) -> None:
    """A ``genomic_benchmarks.loc2seq`` whose download_dataset copies a local task instead of the cloud copy,
    writing DEST/<name>/train|test/<class>/*.txt and returning that folder, as the package does."""

    def download_dataset(name, version=None, dest_path=None, use_cloud_cache=True, **kw):
        calls.append((name, version, use_cloud_cache))
        target = Path(dest_path) / name
        shutil.copytree(source, target)
        if fail:
            (target / "train").rename(target / "partial")
            raise ConnectionError("network is unreachable")
        return target

    package = types.ModuleType("genomic_benchmarks")
    loc2seq = types.ModuleType("genomic_benchmarks.loc2seq")
    loc2seq.download_dataset = download_dataset  # type: ignore[attr-defined]
    package.loc2seq = loc2seq  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "genomic_benchmarks", package)
    monkeypatch.setitem(sys.modules, "genomic_benchmarks.loc2seq", loc2seq)


def fake_hub(monkeypatch, root: Path, calls: list) -> None:
    """A ``huggingface_hub`` whose hf_hub_download returns the cached path of a local file, as the real one
    returns a path in its cache."""

    def hf_hub_download(repo_id, filename, repo_type=None, revision=None, **kw):
        calls.append((repo_id, filename, repo_type, revision))
        path = root / filename
        if not path.is_file():
            raise FileNotFoundError(f"404: {filename}")
        return str(path)

    hub = types.ModuleType("huggingface_hub")
    hub.hf_hub_download = hf_hub_download  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "huggingface_hub", hub)
