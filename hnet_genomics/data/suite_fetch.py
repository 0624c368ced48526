"""Download a benchmark suite's task through the suite's own channel (an optional extra, imported lazily).

- Genomic Benchmarks: the suite's ``genomic-benchmarks`` package (``loc2seq.download_dataset``), which fetches
  the published full-sequence task and writes ``<task>/train|test/<class>/<id>.txt``.
- Nucleotide Transformer: the task's split files from its Hugging Face Hub dataset, at a pinned revision,
  through ``huggingface_hub.hf_hub_download``.

Both packages come with ``pip install 'hnet-genomics[benchmarks]'`` and are imported only here, when a download
is asked for, so the package and its tests run without them and without a network. A task lands whole or not
at all: it is assembled in a temporary folder beside its destination and renamed into place.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from hnet_genomics.atomic import atomic_dir
from hnet_genomics.errors import ConfigError, DataError

BENCHMARKS_EXTRA = "pip install 'hnet-genomics[benchmarks]'"


def _check_destination(dest: Path) -> None:
    """Fetching fills a missing or empty folder; one holding part of a task is the user's to sort out."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise DataError(
            f"{dest}: exists but does not hold both splits of the task; move it away to fetch the task again"
        )


def fetch_genomic_benchmarks_task(dataset: str, version: int, dest: str | Path) -> Path:
    """``dataset`` (its Genomic Benchmarks name) at ``version`` into ``dest``: ``dest/train|test/<class>/*.txt``."""
    dest = Path(dest)
    _check_destination(dest)
    try:
        from genomic_benchmarks.loc2seq import download_dataset
    except ImportError:
        raise ConfigError(
            f"fetching Genomic Benchmarks needs the genomic-benchmarks package ({BENCHMARKS_EXTRA})"
        ) from None
    with atomic_dir(dest, owned=()) as tmp:
        try:
            written = download_dataset(dataset, version=version, dest_path=tmp, use_cloud_cache=True)
        except Exception as e:  # the package raises whatever its HTTP and archive libraries raise
            raise DataError(f"Genomic Benchmarks task {dataset}: download failed ({type(e).__name__}: {e})") from None
        root = Path(written) if written is not None else tmp / dataset
        if not (root / "train").is_dir() or not (root / "test").is_dir():
            raise DataError(f"Genomic Benchmarks task {dataset}: the download holds no train/ and test/ folders")
        for child in list(root.iterdir()):  # <tmp>/<dataset>/train -> <tmp>/train: the task folder is dest itself
            child.rename(tmp / child.name)
        root.rmdir()
    return dest


def fetch_hub_task(repo_id: str, revision: str, task: str, files: list[str], dest: str | Path) -> Path:
    """``<task>/<file>`` of every file from the Hub dataset ``repo_id`` at ``revision`` into ``dest/<file>``."""
    dest = Path(dest)
    _check_destination(dest)
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise ConfigError(
            f"fetching from the Hugging Face Hub needs the huggingface_hub package ({BENCHMARKS_EXTRA})"
        ) from None
    with atomic_dir(dest, owned=()) as tmp:
        for name in files:
            try:
                cached = hf_hub_download(
                    repo_id=repo_id, filename=f"{task}/{name}", repo_type="dataset", revision=revision
                )
            except Exception as e:  # network, authentication or missing-file errors of huggingface_hub
                raise DataError(
                    f"{repo_id}@{revision[:12]} {task}/{name}: download failed ({type(e).__name__}: {e})"
                ) from None
            shutil.copyfile(cached, tmp / name)
    return dest
