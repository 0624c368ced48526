"""Byte-range reads from a bgzip file through its ``.gzi`` index, keeping recently inflated blocks.

A BGZF block holds up to 64 KiB; inflating one costs far more than using it, and consecutive windows
(evaluation tiling) or a small genome (a bacterial one fits in the cache whole) reuse the same blocks.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from pathlib import Path

import numpy as np

from hnet_genomics.errors import DataError

BLOCK_HEADER = 18  # gzip header with the 6-byte BC extra field; BSIZE sits at bytes 16-17


class BgzfReader:
    """Not shared across processes: each DataLoader worker makes its own (see ``Genome``)."""

    def __init__(self, path: Path, cache_bytes: int = 64 << 20) -> None:
        self.path = path
        gzi = Path(f"{path}.gzi").read_bytes()
        n = int.from_bytes(gzi[:8], "little")
        if len(gzi) != 8 + 16 * n:
            raise DataError(f"{path}.gzi: corrupt bgzip index; delete it to rebuild")
        pairs = np.frombuffer(gzi, dtype="<u8", count=2 * n, offset=8).reshape(n, 2).astype(np.int64)
        self._compressed = np.concatenate([[0], pairs[:, 0]])
        self._uncompressed = np.concatenate([[0], pairs[:, 1]])
        self._file = open(path, "rb")
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._cached_bytes = 0
        self._cache_limit = cache_bytes

    def _block(self, i: int) -> bytes:
        data = self._cache.get(i)
        if data is not None:
            self._cache.move_to_end(i)
            return data
        self._file.seek(int(self._compressed[i]))
        header = self._file.read(BLOCK_HEADER)
        if len(header) < BLOCK_HEADER or header[12:14] != b"BC":
            raise DataError(f"{self.path}: corrupt bgzip block at byte {self._compressed[i]}")
        size = int.from_bytes(header[16:18], "little") + 1
        try:
            data = zlib.decompress(self._file.read(size - BLOCK_HEADER)[:-8], -15)
        except zlib.error as e:
            raise DataError(f"{self.path}: corrupt bgzip block at byte {self._compressed[i]} ({e})") from None
        self._cache[i] = data
        self._cached_bytes += len(data)
        while self._cached_bytes > self._cache_limit and len(self._cache) > 1:
            self._cached_bytes -= len(self._cache.popitem(last=False)[1])
        return data

    def read(self, start: int, end: int) -> bytes:
        """Uncompressed bytes ``[start, end)`` of the file's content."""
        i = int(np.searchsorted(self._uncompressed, start, side="right")) - 1
        parts = []
        pos = start
        while pos < end:
            if i >= len(self._uncompressed):
                raise DataError(f"{self.path}: read past the end of the data; the .fai/.gzi index is stale")
            block = self._block(i)
            offset = pos - int(self._uncompressed[i])
            if offset >= len(block):
                raise DataError(f"{self.path}: read past the end of the data; the .fai/.gzi index is stale")
            piece = block[offset:offset + end - pos]
            parts.append(piece)
            pos += len(piece)
            i += 1
        return b"".join(parts)

    def close(self) -> None:
        self._file.close()
