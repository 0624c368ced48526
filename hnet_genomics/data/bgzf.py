"""bgzip (BGZF) files: byte-range reads through the ``.gzi`` index keeping recently inflated blocks, and a
writer that compresses blocks on several threads (``--threads`` of `data prepare`, `fetch-hg38`, tabix tracks).

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
            piece = block[offset : offset + end - pos]
            parts.append(piece)
            pos += len(piece)
            i += 1
        return b"".join(parts)

    def close(self) -> None:
        self._file.close()


BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")  # the empty last block
BLOCK_DATA = 0xFF00  # uncompressed bytes per block, as htslib: its deflate output always fits a 64 KiB block
_HEADER = bytes.fromhex("1f8b08040000000000ff060042430200")


def _block(data: bytes, level: int) -> bytes:
    packer = zlib.compressobj(level, zlib.DEFLATED, -15)
    body = packer.compress(data) + packer.flush()
    if len(body) + 26 > 1 << 16:  # incompressible: stored deflate blocks always fit
        packer = zlib.compressobj(0, zlib.DEFLATED, -15)
        body = packer.compress(data) + packer.flush()
    size = len(body) + 25  # BSIZE: total block size - 1
    return (
        _HEADER
        + size.to_bytes(2, "little")
        + body
        + zlib.crc32(data).to_bytes(4, "little")
        + len(data).to_bytes(4, "little")
    )


class BgzfWriter:
    """bgzip (BGZF) output, blocks compressed on ``threads`` threads (zlib releases the GIL), written in order.

    Byte-identical output whatever the thread count; htslib, tabix and faidx read it like ``bgzip``'s.
    """

    def __init__(self, path: str | Path, threads: int = 1, level: int = 6) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self._file = open(path, "wb")
        self._level = level
        self._pending = bytearray()
        self._pool = ThreadPoolExecutor(threads) if threads > 1 else None
        self._inflight: list = []
        self._max_inflight = 4 * threads

    def write(self, data: bytes) -> None:
        self._pending += data
        while len(self._pending) >= BLOCK_DATA:
            self._submit(bytes(self._pending[:BLOCK_DATA]))
            del self._pending[:BLOCK_DATA]

    def _submit(self, chunk: bytes) -> None:
        if self._pool is None:
            self._file.write(_block(chunk, self._level))
            return
        self._inflight.append(self._pool.submit(_block, chunk, self._level))
        while len(self._inflight) > self._max_inflight:
            self._file.write(self._inflight.pop(0).result())

    def close(self) -> None:
        if self._file.closed:
            return
        try:
            if self._pending:
                self._submit(bytes(self._pending))
                self._pending.clear()
            for future in self._inflight:
                self._file.write(future.result())
            self._file.write(BGZF_EOF)
        finally:
            self._inflight.clear()
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
            self._file.close()

    def __enter__(self) -> BgzfWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:  # the caller's temporary file is discarded anyway: do not compress the rest
            self._pending.clear()
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
            self._file.close()
