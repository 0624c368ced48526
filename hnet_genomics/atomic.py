"""The one atomic writer: a reader never sees a half-written file or folder, and a failed or killed command
leaves nothing of its own behind and removes nothing it did not write.

Files: written to a hidden temporary name in the destination's folder (so the rename is atomic), flushed to
disk, then renamed over the destination. Folders (saved models, classifiers): built under a temporary name
and swapped in with one ``renameat2(RENAME_EXCHANGE)`` on Linux; where the file system cannot exchange, the
old folder is renamed aside first and, if the process dies between the two renames, the next write (or
``recover_dir``) puts it back. Temporary names carry the host and process id, so a later run can tell the
leftovers of a killed process (``sweep_stale``) from the live temporaries of one still running.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import math
import os
import re
import shutil
import socket
import sys
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

_HOST = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname().split(".")[0]) or "host"
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)-[0-9a-f]{8}")


def temp_sibling(dest: str | Path, kind: str = "tmp", keep_suffix: bool = False) -> Path:
    """``.NAME.tmp-HOST-PID-RAND`` beside ``dest``; ``keep_suffix`` repeats its suffix (pybigtools and htslib
    choose the format from it)."""
    dest = Path(dest)
    suffix = dest.suffix if keep_suffix else ""
    return dest.parent / f".{dest.name}.{kind}-{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _leftovers(dest: Path, kind: str) -> list[Path]:
    """Temporaries (``tmp``) or set-aside folders (``old``) of ``dest`` whose process on this host is gone."""
    found: list[Path] = []
    try:
        names = os.listdir(dest.parent)
    except OSError:
        return found
    for name in names:
        m = _LEFTOVER.match(name)
        if m and m["name"] == dest.name and m["kind"] == kind and m["host"] == _HOST and not _alive(int(m["pid"])):
            found.append(dest.parent / name)
    return found


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def sweep_stale(dests: Iterable[str | Path]) -> list[Path]:
    """Remove the temporaries a killed process left beside each of ``dests``; returns what was removed."""
    removed = []
    for dest in map(Path, dests):
        recover_dir(dest)
        for p in _leftovers(dest, "tmp") + (_leftovers(dest, "old") if dest.exists() else []):
            _remove(p)
            removed.append(p)
    return removed


def make_dirs(path: str | Path) -> list[Path]:
    """``mkdir -p``; returns the folders it created, deepest first (what ``remove_empty`` may undo)."""
    path = Path(path)
    missing = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    path.mkdir(parents=True, exist_ok=True)
    return missing


def remove_empty(created: Iterable[Path]) -> None:
    """Remove folders of ``make_dirs`` that are still empty (deepest first), after a failure."""
    for d in created:
        try:
            d.rmdir()
        except OSError:
            break


def remove_created(created: list[Path]) -> None:
    """After a failure: remove the folders ``make_dirs`` created, with their content (all of it written by this
    run, since the folders did not exist before it)."""
    if created:
        shutil.rmtree(created[-1], ignore_errors=True)


@contextlib.contextmanager
def output_dir(path: str | Path) -> Iterator[Path]:
    """Create ``path`` with its parents for the block; if the block fails, the folders it created and left
    empty are removed again, so a failed command leaves no empty output folder behind."""
    created = make_dirs(path)
    try:
        yield Path(path)
    except BaseException:
        remove_empty(created)
        raise


def _fsync_path(path: Path, directory: bool = False) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems (and /proc-like mounts) refuse fsync; the rename is still atomic
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(dest: str | Path, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; it replaces ``dest`` only if the block succeeds.

    Missing parent folders are created (and removed again if the block fails). The caller (or htslib)
    creates the file, so it gets the normal umask permissions, not mkstemp's 0600.
    """
    dest = Path(dest)
    created = make_dirs(dest.parent)
    sweep_stale([dest])
    tmp = temp_sibling(dest, keep_suffix=keep_suffix)
    try:
        yield tmp
        _fsync_path(tmp)
        os.replace(tmp, dest)
        _fsync_path(dest.parent, directory=True)
    except BaseException:
        tmp.unlink(missing_ok=True)
        remove_empty(created)
        raise


def commit(tmp: str | Path, dest: str | Path) -> Path:
    """Move a finished temporary (from ``temp_sibling``) over ``dest``: flushed first, then one rename."""
    _fsync_path(Path(tmp))
    os.replace(tmp, dest)
    _fsync_path(Path(dest).parent, directory=True)
    return Path(dest)


def write_text_atomic(dest: str | Path, text: str) -> None:
    with atomic_path(dest) as tmp:
        tmp.write_text(text)


def json_safe(value: Any) -> Any:
    """NaN and infinities become null: JSON has no such numbers, and ``json.dumps`` would write invalid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_json_atomic(dest: str | Path, data: Any) -> None:
    """Strict JSON (non-finite numbers written as null), indented, atomically."""
    write_text_atomic(dest, json.dumps(json_safe(data), indent=2, allow_nan=False) + "\n")


# ---------------------------------------------------------------------------------------------------------
# folders


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False  # glibc < 2.28 or another libc
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False  # this file system cannot exchange (NFS, some FUSE mounts)
    raise OSError(err, os.strerror(err), str(b))


def recover_dir(dest: str | Path) -> Path | None:
    """If a swap was interrupted between its two renames (``dest`` missing, its old version set aside by a
    process that is gone), put the old version back. Returns the restored path, else None."""
    dest = Path(dest)
    if dest.exists():
        return None
    olds = sorted(_leftovers(dest, "old"), key=lambda p: p.stat().st_mtime)
    if not olds:
        return None
    os.rename(olds[-1], dest)
    return dest


def foreign_entries(directory: Path, owned: Iterable[str]) -> list[str]:
    """Names in ``directory`` that are neither in ``owned`` nor our own temporaries."""
    allowed = set(owned)
    return sorted(n for n in os.listdir(directory) if n not in allowed and not _LEFTOVER.match(n))


@contextlib.contextmanager
def atomic_dir(dest: str | os.PathLike[str], owned: Iterable[str] | None = None) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``dest``; on success it takes ``dest``'s place whole.

    ``owned`` names every entry this writer puts in the folder: an existing ``dest`` holding anything else
    is refused (``OutputError``) instead of being deleted with the old version.
    """
    from hnet_genomics.errors import OutputError

    dest = Path(dest)
    created = make_dirs(dest.parent)
    sweep_stale([dest])
    if dest.exists() and not dest.is_dir():
        raise OutputError(f"{dest}: exists and is not a folder; remove it or choose another output")
    if owned is not None and dest.is_dir():
        foreign = foreign_entries(dest, owned)
        if foreign:
            raise OutputError(
                f"{dest}: holds files this command did not write ({', '.join(foreign[:3])}"
                f"{', ...' if len(foreign) > 3 else ''}); move them away or choose another output"
            )
    tmp = temp_sibling(dest)
    try:
        tmp.mkdir()  # umask permissions, not mkdtemp's 0700 (a shared model must stay readable)
        yield tmp
        for p in tmp.rglob("*"):
            if p.is_file():
                _fsync_path(p)
        _swap_in(tmp, dest)
        _fsync_path(dest.parent, directory=True)
    except BaseException:
        _remove(tmp)
        remove_empty(created)
        raise


def _swap_in(tmp: Path, dest: Path) -> None:
    try:
        os.rename(tmp, dest)  # dest absent (or an empty folder): one atomic rename
        return
    except OSError as e:
        if e.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.EISDIR):
            raise
    if _exchange(tmp, dest):
        _remove(tmp)  # now holds the previous version
        return
    old = temp_sibling(dest, kind="old")
    os.rename(dest, old)
    # A crash here leaves dest missing: recover_dir (run by every later write and by readers) restores `old`.
    os.rename(tmp, dest)
    _remove(old)
