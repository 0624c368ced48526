"""Command-line conventions every subcommand shares, so a mistake reads the same wherever it is made.

Numbers are checked by argparse types that name the option (``--threads 0`` is refused, not ignored);
``--threads`` and ``--quiet`` mean the same on every long-running command; progress bars appear only when
stderr is a terminal (a pipeline log gets no carriage-return noise); output paths are checked before any
work starts, and their missing parent folders are created, as Snakemake users expect.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypedDict, TypeVar

from hnet_genomics.errors import DataError, OutputError

Num = TypeVar("Num", int, float)


def _number(text: str, kind: Callable[[str], Num], what: str, ok: Callable[[Num], bool]) -> Num:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got '{text}'") from None
    if (isinstance(value, float) and not math.isfinite(value)) or not ok(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got '{text}'")
    return value


def positive_int(text: str) -> int:
    return _number(text, int, "a positive integer", lambda v: v >= 1)


def nonnegative_int(text: str) -> int:
    return _number(text, int, "an integer >= 0", lambda v: v >= 0)


def positive_float(text: str) -> float:
    return _number(text, float, "a positive number", lambda v: v > 0)


def nonnegative_float(text: str) -> float:
    return _number(text, float, "a number >= 0", lambda v: v >= 0)


def open_fraction(text: str) -> float:
    return _number(text, float, "a number between 0 and 1 (exclusive)", lambda v: 0 < v < 1)


MODEL_HELP = (
    "saved model folder (written by save_pretrained), or a Hugging Face Hub repo id: org/name or "
    "org/name@revision, downloaded once into the Hub cache (HF_HUB_OFFLINE=1: the cache only)"
)

# ---------------------------------------------------------------------------------------------------------
# --threads / --quiet


def add_threads(parser: argparse.ArgumentParser, what: str = "torch and BLAS CPU threads") -> None:
    parser.add_argument(
        "--threads", type=positive_int, metavar="N", help=f"{what} (default: every core the machine offers)"
    )


def add_quiet(parser: argparse.ArgumentParser, *aliases: str) -> None:
    parser.add_argument(
        "--quiet",
        *aliases,
        action="store_true",
        help="no progress bar and no library banners or warnings (progress bars appear only when "
        "stderr is a terminal anyway)",
    )


class _Settings(TypedDict):
    threads: int | None
    quiet: bool


_settings: _Settings = {"threads": None, "quiet": False}


def apply_threads(threads: int | None, quiet: bool = False) -> None:
    """Cap torch's intra-op pool and the BLAS/OpenMP pools numpy, scipy and scikit-learn use, and remember the
    command's --threads / --quiet for work started deep inside the data layer (a genome's bgzip conversion)."""
    _settings.update({"threads": threads, "quiet": quiet})
    if threads is None:
        return
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(limits=threads)


def thread_count() -> int:
    """The command's --threads, else the cores this process may run on."""
    if _settings["threads"] is not None:
        return _settings["threads"]
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def show_progress(quiet: bool | None = None) -> bool:
    """Progress bars only for a person watching: not with --quiet, not into a log file or pipe."""
    quiet = _settings["quiet"] if quiet is None else quiet
    return not quiet and sys.stderr.isatty()


# ---------------------------------------------------------------------------------------------------------
# paths


def check_input_file(path: str | Path, option: str) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{option} {path}: no such file")
    if path.is_dir():
        raise DataError(f"{option} {path}: is a folder, expected a file")
    if not os.access(path, os.R_OK):
        raise DataError(f"{option} {path}: not readable (permission denied)")
    return path


def check_input_file_or_dir(path: str | Path, option: str) -> Path:
    """A file, or a folder of files (a text corpus): it exists and can be read."""
    path = Path(path)
    if path.is_dir():
        if not os.access(path, os.R_OK | os.X_OK):
            raise DataError(f"{option} {path}: folder not readable (permission denied)")
        return path
    return check_input_file(path, option)


def _creatable(path: Path, option: str) -> None:
    """``path`` can be created: its nearest existing ancestor is a writable folder."""
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{option} {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{option} {path}: cannot create it, {parent} is not writable")


def check_output_file(path: str | Path, option: str = "--out") -> Path:
    """A file to (re)write: not a folder, and either writable or creatable (parents are created later)."""
    path = Path(path)
    if str(path).endswith(os.sep) or path.is_dir():
        raise OutputError(f"{option} {path}: is a folder, expected a file name")
    if path.exists():
        if not os.access(path.parent, os.W_OK | os.X_OK):
            raise OutputError(f"{option} {path}: cannot replace it, {path.parent} is not writable")
        return path
    _creatable(path, option)
    return path


def check_output_dir(path: str | Path, option: str = "--out") -> Path:
    """A folder to write into: an existing writable folder, or creatable."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise OutputError(f"{option} {path}: exists and is not a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise OutputError(f"{option} {path}: folder is not writable")
        return path
    _creatable(path, option)
    return path


def check_output_prefix(prefix: str | Path, option: str = "--out") -> Path:
    """A file-name prefix (``tracks/hla`` -> ``tracks/hla.stage1.bed``...): its folder is created if missing."""
    prefix = Path(prefix)
    if str(prefix).endswith(os.sep) or prefix.is_dir():
        raise OutputError(f"{option} {prefix}: is a folder; --out is a file-name prefix (e.g. {prefix / 'hla'})")
    if prefix.parent.exists():
        if not prefix.parent.is_dir():
            raise OutputError(f"{option} {prefix}: {prefix.parent} is a file, not a folder")
        if not os.access(prefix.parent, os.W_OK | os.X_OK):
            raise OutputError(f"{option} {prefix}: folder {prefix.parent} is not writable")
        return prefix
    _creatable(prefix, option)
    return prefix
