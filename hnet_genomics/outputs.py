"""Where a command may write: one policy for every command, so nothing of the user's is overwritten or deleted.

Before any work, a command names its inputs and its outputs in one call, ``check_paths``:

- every output can be written (a file name, a folder or a file-name prefix); missing folders are created when
  the first file is written (``atomic.py``), and removed again if the command fails;
- no output is an input. Paths are compared as typed and resolved (symlinks followed), files also by device
  and inode (hard links), over every file written under an output's name (``OUT.tsv`` beside ``OUT.npy``, the
  ``.tbi`` beside a VCF) and every file read for an input (a FASTA's ``.fai`` / ``.gzi``, the bgzip copy of a
  gzip file, everything inside an input folder);
- no two outputs are one file.

Deleting is rarer still: a command may delete only a file it wrote itself. ``file_record`` notes a file's
size and modification time when it is written, and ``still_as_recorded`` tells, later, whether the file at
that name is still exactly that one (a file the user put there since is left alone).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hnet_genomics.errors import OutputError
from hnet_genomics.options import check_output_dir, check_output_file, check_output_prefix

PathLike = str | os.PathLike[str]
Inputs = Mapping[str, PathLike | Iterable[PathLike] | None]
# Files read together with an input file: indexes beside it (htslib's names), and for a plain-gzip FASTA the
# bgzip copy ``data/genome.py`` writes beside it (``NAME.bgz`` for ``NAME.gz``) with its indexes.
INDEX_SUFFIXES = (".fai", ".gzi", ".tbi", ".csi")


@dataclass(frozen=True)
class Output:
    """One output option: the name the user gave and every path the command writes under it."""

    option: str
    path: Path
    kind: Literal["file", "folder", "prefix"]
    files: tuple[Path, ...] = ()  # every file written (for a file output, the file itself first)
    folders: tuple[Path, ...] = ()  # folders whose content is written or replaced as a whole
    names: str = ".+"  # prefix outputs: regex of what follows ``PREFIX.`` in the names written


def output_file(path: PathLike, option: str = "--out", derived: Iterable[PathLike] = ()) -> Output:
    """A file, and the files derived from its name (``derived``: an index, a TSV beside it...)."""
    p = Path(path)
    return Output(option, p, "file", (p, *map(Path, derived)))


def output_folder(
    path: PathLike, option: str = "--out", files: Iterable[str] = (), folders: Iterable[str] = ()
) -> Output:
    """A folder the command writes ``files`` into and whose sub-``folders`` it writes or replaces whole."""
    p = Path(path)
    return Output(option, p, "folder", tuple(p / f for f in files), tuple(p / f for f in folders))


def output_prefix(path: PathLike, option: str = "--out", names: str = ".+") -> Output:
    """A file-name prefix: the command writes ``PREFIX.<names>`` (a regex) in the prefix's folder."""
    return Output(option, Path(path), "prefix", names=names)


def check_paths(inputs: Inputs, outputs: Iterable[Output]) -> None:
    """Raise ``OutputError`` (one line naming both options) unless every output is writable, none is or
    holds an input, and no two are one file. ``inputs`` maps an option to its path(s), files or folders;
    None and options not given are skipped."""
    outputs = list(outputs)
    for o in outputs:
        {"file": check_output_file, "folder": check_output_dir, "prefix": check_output_prefix}[o.kind](o.path, o.option)
    reads = [r for option, value in inputs.items() for r in _reads(option, value)]
    for o in outputs:
        for r in reads:
            clash = _clash(o, r)
            if clash:
                raise OutputError(
                    f"{o.option} {o.path}: {clash}; an output may never replace an input (choose another {o.option})"
                )
    seen: dict[Path, Output] = {}
    for o in outputs:
        for f in o.files:
            other = seen.setdefault(_resolved(f), o)
            if other is not o:
                raise OutputError(f"{o.option} {o.path}: writes {f}, which {other.option} {other.path} writes too")


# ---------------------------------------------------------------------------------------------------------
# what an input reads


@dataclass(frozen=True)
class _Read:
    option: str
    given: Path  # as typed
    path: Path  # this file (the input itself or a companion)
    folder: bool
    companion: bool


def _values(value: PathLike | Iterable[PathLike] | None) -> list[Path]:
    if value is None:
        return []
    if isinstance(value, (str, os.PathLike)):
        return [Path(value)]
    return [Path(v) for v in value if v is not None]


def companions(path: PathLike) -> list[Path]:
    """The files read with ``path``: its indexes, and a gzip file's bgzip copy with its indexes."""
    p = Path(path)
    found = [Path(f"{p}{s}") for s in INDEX_SUFFIXES]
    if p.name.endswith(".gz"):
        copy = p.with_name(p.name[:-3] + ".bgz")
        found += [copy, *(Path(f"{copy}{s}") for s in INDEX_SUFFIXES)]
    return found


def _reads(option: str, value: PathLike | Iterable[PathLike] | None) -> Iterator[_Read]:
    for given in _values(value):
        if given.is_dir():
            yield _Read(option, given, given, True, False)
            continue
        yield _Read(option, given, given, False, False)
        for c in companions(given):
            yield _Read(option, given, c, False, True)


# ---------------------------------------------------------------------------------------------------------
# comparing paths


def _resolved(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _forms(path: Path) -> set[Path]:
    """The path as typed (made absolute, not following links) and resolved (following them)."""
    return {Path(os.path.abspath(path)), _resolved(path)}


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else None


def _within(path: Path, folder: Path) -> bool:
    return any(p == f or f in p.parents for p in _forms(path) for f in _forms(folder))


def _same(a: Path, b: Path) -> bool:
    if _forms(a) & _forms(b):
        return True
    ia = _inode(a)
    return ia is not None and ia == _inode(b)


def _what(r: _Read) -> str:
    if r.companion:
        return f"{r.path}, read with the input {r.option} {r.given}"
    return f"the input {r.option} {r.given}"


def _clash(o: Output, r: _Read) -> str | None:
    """Why output ``o`` would replace what ``r`` reads, or None."""
    for f in o.files:
        lead = "" if f == o.path else f"writes {f}, which "
        if r.folder and _within(f, r.path):
            return f"{lead}lies inside the input {r.option} {r.given}, a folder this command reads"
        if not r.folder and _same(f, r.path):
            verb = "is" if _forms(f) & _forms(r.path) else "is a hard link to"
            return f"{lead}{verb} {_what(r)}"
    for d in o.folders:
        if _within(r.path, d):
            return f"writes {d}, which holds {_what(r)}"
        if r.folder and _within(d, r.path):
            return f"writes {d}, inside the input {r.option} {r.given}, a folder this command reads"
    if o.kind == "folder" and r.folder and _within(o.path, r.path) and not o.files and not o.folders:
        return f"lies inside the input {r.option} {r.given}, a folder this command reads"
    if o.kind == "prefix":
        folder = o.path.parent
        if r.folder and _within(folder, r.path):
            return f"writes into the input {r.option} {r.given}, a folder this command reads"
        if not r.folder:
            named = re.compile(re.escape(o.path.name) + r"\." + f"(?:{o.names})")
            for form in _forms(r.path):
                if named.fullmatch(form.name) and form.parent in _forms(folder):
                    return f"writes {form.parent / form.name}, which is {_what(r)}"
            ino = _inode(r.path)
            if ino is not None and folder.is_dir():
                for p in folder.iterdir():
                    if named.fullmatch(p.name) and _inode(p) == ino:
                        return f"writes {p}, which is a hard link to {_what(r)}"
    return None


# ---------------------------------------------------------------------------------------------------------
# deleting only what was written


def file_record(path: PathLike) -> dict[str, int]:
    """What identifies a file this package just wrote: its size and modification time (ns)."""
    st = os.stat(path)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def still_as_recorded(path: PathLike, record: object) -> bool:
    """``path`` is a regular file (not a link) with exactly the size and modification time of ``record``."""
    if not isinstance(record, dict):
        return False
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(st.st_mode) and st.st_size == record.get("size") and st.st_mtime_ns == record.get("mtime_ns")
