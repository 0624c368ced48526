"""UTF-8 text corpora as raw bytes, with the ``Genome`` interface so the same windows and splits apply.

Each file is one record (named by its path relative to the corpus root); windows may cut a multi-byte
character, which is fine for a byte-level model.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from hnet_genomics.errors import DataError

HEAD_BYTES = 1 << 16


def _check_utf8(path: Path, decoder: codecs.IncrementalDecoder, data: bytes, final: bool, lines_before: int) -> None:
    if b"\x00" in data:
        raise DataError(f"{path}: binary file (NUL bytes), not UTF-8 text")
    try:
        decoder.decode(data, final=final)
    except UnicodeDecodeError as e:
        line = lines_before + data[: max(e.start, 0)].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 text") from None


class TextCorpus:
    """One text file, or every non-hidden file under a directory (sorted), opened for random access."""

    def __init__(self, path_or_dir: str | Path) -> None:
        self.path = Path(path_or_dir)
        if not self.path.exists():
            raise DataError(f"{self.path}: no such file or directory")
        if self.path.is_dir():
            files = sorted(
                p
                for p in self.path.rglob("*")
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(self.path).parts)
            )
            self._files = {p.relative_to(self.path).as_posix(): p for p in files if p.stat().st_size > 0}
        else:
            self._files = {self.path.name: self.path} if self.path.stat().st_size > 0 else {}
        if not self._files:
            raise DataError(f"{self.path}: no non-empty text files")
        for f in self._files.values():
            with open(f, "rb") as fh:
                head = fh.read(HEAD_BYTES)
            _check_utf8(f, codecs.getincrementaldecoder("utf-8")(), head, len(head) < HEAD_BYTES, 0)
        self.sizes: dict[str, int] = {name: p.stat().st_size for name, p in self._files.items()}

    def records(self) -> list[str]:
        return list(self.sizes)

    def fetch(self, chrom: str, start: int, end: int) -> bytes:
        size = self.sizes.get(chrom)
        if size is None:
            raise DataError(f"{self.path}: no file named '{chrom}' in the corpus")
        if not 0 <= start <= end <= size:
            raise DataError(f"{self.path}: range {chrom}:{start}-{end} is outside the file (length {size})")
        with open(self._files[chrom], "rb") as f:
            f.seek(start)
            return f.read(end - start)

    def validate(self) -> dict[str, int]:
        """Decode every file completely (streamed), so a bad byte deep inside is found before training."""
        for f in self._files.values():
            decoder = codecs.getincrementaldecoder("utf-8")()
            lines = 0
            with open(f, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    _check_utf8(f, decoder, chunk, False, lines)
                    lines += chunk.count(b"\n")
            _check_utf8(f, decoder, b"", True, lines)
        return self.sizes
