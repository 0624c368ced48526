"""Windows of a genome (or text corpus) as training and evaluation items, and their batching.

Items are dicts ``{"input_ids": LongTensor (L,) of byte values, "loss_mask": BoolTensor (L,)}`` (plus
``"soft_mask"`` with ``DataConfig.emit_soft_mask``; evaluation items also carry ``"chrom"``, ``"start"``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from hnet_genomics.config import DataConfig
from hnet_genomics.data.encoding import EncodedWindow, encode_window
from hnet_genomics.data.intervals import Interval, SizedSource
from hnet_genomics.errors import ConfigError, DataError

MAX_DRAWS = 1000  # n_policy=drop: draws before concluding the intervals hold almost only N


class SequenceSource(SizedSource, Protocol):
    """Record sizes and the bytes of any region: ``Genome`` or ``TextCorpus``."""

    def fetch(self, chrom: str, start: int, end: int) -> bytes: ...


_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    """SplitMix64 finaliser: a cheap counter-based generator, ~20x faster to key than a numpy Generator."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


class _CounterRng:
    """Draw ``k`` of the stream keyed by (seed, rank, index): a pure function, so resuming is exact."""

    def __init__(self, seed: int, rank: int, index: int) -> None:
        self._key = _splitmix64(_splitmix64(_splitmix64(seed & _MASK64) ^ rank) ^ index)
        self._k = 0

    def _next(self) -> int:
        self._k += 1
        return _splitmix64(self._key ^ _splitmix64(self._k))

    def below(self, n: int) -> int:
        return (self._next() * n) >> 64  # Lemire's multiply-shift; bias < n / 2**64

    def uniform(self) -> float:
        return (self._next() >> 11) / float(1 << 53)


def _item(window: EncodedWindow) -> dict[str, torch.Tensor]:
    item = {
        "input_ids": torch.from_numpy(np.frombuffer(window.ids, dtype=np.uint8).astype(np.int64)),
        "loss_mask": torch.from_numpy(np.ascontiguousarray(window.loss_mask)),
    }
    if window.soft_mask is not None:
        item["soft_mask"] = torch.from_numpy(np.ascontiguousarray(window.soft_mask))
    return item


class RandomWindowDataset(IterableDataset):
    """Infinite stream of random ``seq_len`` windows, uniform over the bases of ``intervals``.

    Window ``i`` of rank ``r`` is a pure function of ``(seed, r, i)``: resuming with ``start_index=n``
    replays the stream exactly, and ranks never share a window stream. DataLoader workers take turns by
    whole batches (worker ``w`` of ``W`` builds batches ``b ≡ w mod W``), which the DataLoader's round-robin
    reassembles into the same global order for any number of workers; pass the DataLoader's ``batch_size``.
    """

    def __init__(
        self,
        genome: SequenceSource,
        intervals: Sequence[Interval],
        seq_len: int,
        data_cfg: DataConfig,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        start_index: int = 0,
        batch_size: int = 1,
    ) -> None:
        if seq_len < 1 or batch_size < 1 or start_index < 0:
            raise ConfigError(
                f"need seq_len >= 1, batch_size >= 1, start_index >= 0; got {seq_len}, {batch_size}, {start_index}"
            )
        if not 0 <= rank < world_size:
            raise ConfigError(f"rank {rank} is outside world size {world_size}")
        usable = [iv for iv in intervals if iv.end - iv.start >= seq_len]
        if not usable:
            longest = max((iv.end - iv.start for iv in intervals), default=0)
            raise DataError(
                f"{genome.path}: window length {seq_len:,} is longer than every interval "
                f"({len(intervals)} interval(s), longest {longest:,} bp)"
            )
        self.genome, self.seq_len, self.cfg = genome, seq_len, data_cfg
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.start_index, self.batch_size = start_index, batch_size
        self._chroms = [iv.chrom for iv in usable]
        self._starts = np.array([iv.start for iv in usable], dtype=np.int64)
        counts = np.array([iv.end - iv.start - seq_len + 1 for iv in usable], dtype=np.int64)
        self._cum = np.cumsum(counts)  # window start positions, numbered across all intervals
        self._total = int(self._cum[-1])

    def window(self, index: int) -> dict[str, torch.Tensor]:
        """Window number ``index`` of this rank's stream."""
        rng = _CounterRng(self.seed, self.rank, index)
        cfg = self.cfg
        for _ in range(MAX_DRAWS):
            pos = rng.below(self._total)
            k = int(np.searchsorted(self._cum, pos, side="right"))
            start = int(self._starts[k]) + pos - (int(self._cum[k - 1]) if k else 0)
            chrom = self._chroms[k]
            raw = self.genome.fetch(chrom, start, start + self.seq_len)
            window = encode_window(raw, cfg, str(self.genome.path), chrom, start)
            if cfg.n_policy == "drop" and window.ambiguous_fraction > cfg.max_n_fraction:
                continue
            if cfg.kind == "dna" and rng.uniform() < cfg.rc_prob:
                window = window.reverse_complemented()
            return _item(window)
        raise DataError(
            f"{self.genome.path}: no window with at most {cfg.max_n_fraction:.0%} ambiguous bases "
            f"in {MAX_DRAWS} draws; raise data.max_n_fraction or use n_policy=mask"
        )

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        batch = worker
        while True:
            first = self.start_index + batch * self.batch_size
            for index in range(first, first + self.batch_size):
                yield self.window(index)
            batch += workers


class EvalWindowDataset(Dataset):
    """Non-overlapping windows that tile every interval exactly once, in order; no augmentation.

    The last window of an interval may be shorter. Under ``n_policy=drop`` nothing is dropped (coverage
    must stay exact); ambiguous bases are masked from the loss instead.
    """

    def __init__(
        self, genome: SequenceSource, intervals: Sequence[Interval], seq_len: int, data_cfg: DataConfig
    ) -> None:
        if seq_len < 1:
            raise ConfigError(f"seq_len must be >= 1, got {seq_len}")
        self.genome, self.seq_len, self.cfg = genome, seq_len, data_cfg
        chroms, starts, ends = [], [], []
        for ci, iv in enumerate(intervals):
            s = np.arange(iv.start, iv.end, seq_len, dtype=np.int64)
            starts.append(s)
            ends.append(np.minimum(s + seq_len, iv.end))
            chroms.append(np.full(len(s), ci, dtype=np.int64))
        self._names = [iv.chrom for iv in intervals]
        self._chrom = np.concatenate(chroms) if chroms else np.zeros(0, dtype=np.int64)
        self._start = np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64)
        self._end = np.concatenate(ends) if ends else np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._start)

    def lengths(self) -> np.ndarray:
        """Bases per window, for ``PackedBatchSampler``."""
        return self._end - self._start

    def __getitem__(self, i: int) -> dict:
        chrom, start, end = self._names[self._chrom[i]], int(self._start[i]), int(self._end[i])
        window = encode_window(self.genome.fetch(chrom, start, end), self.cfg, str(self.genome.path), chrom, start)
        return {**_item(window), "chrom": chrom, "start": start}


class PackedBatchSampler:
    """Groups consecutive items into batches of at most ``max_tokens`` bases for the packed layout."""

    def __init__(self, lengths: Sequence[int] | np.ndarray, max_tokens: int) -> None:
        self.batches: list[list[int]] = []
        current: list[int] = []
        used = 0
        for i, n in enumerate(int(x) for x in lengths):
            if n > max_tokens:
                raise ConfigError(f"a window of {n:,} bases does not fit in {max_tokens:,} tokens per packed batch")
            if used + n > max_tokens:
                self.batches.append(current)
                current, used = [], 0
            current.append(i)
            used += n
        if current:
            self.batches.append(current)

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


_PER_BASE = ("loss_mask", "soft_mask")


def _metadata(items: Sequence[dict]) -> dict:
    out: dict = {}
    if "chrom" in items[0]:
        out["chrom"] = [it["chrom"] for it in items]
        out["start"] = torch.tensor([it["start"] for it in items], dtype=torch.long)
    return out


def collate_padded(items: Sequence[dict]) -> dict:
    """Right-pad to the longest item with byte 0; ``mask`` is False on padding, as is ``loss_mask``.

    Batches are assembled in numpy: torch's multi-threaded fill of a (B, L) tensor can stall for
    milliseconds when the other cores are busy (measured on a 2-core x86 CPU).
    """
    lengths = [len(it["input_ids"]) for it in items]
    shape = (len(items), max(lengths))
    keys = [k for k in _PER_BASE if k in items[0]]
    ids = np.zeros(shape, dtype=np.int64)
    arrays = {"mask": np.zeros(shape, dtype=bool), **{k: np.zeros(shape, dtype=bool) for k in keys}}
    for b, (it, n) in enumerate(zip(items, lengths)):
        ids[b, :n] = it["input_ids"].numpy()
        arrays["mask"][b, :n] = True
        for k in keys:
            arrays[k][b, :n] = it[k].numpy()
    return {
        "input_ids": torch.from_numpy(ids),
        **{k: torch.from_numpy(v) for k, v in arrays.items()},
        **_metadata(items),
    }


def collate_packed(items: Sequence[dict]) -> dict:
    """Concatenate into one row; ``cu_seqlens`` (B+1,) int32 marks where each sequence starts and ends."""
    cu = np.zeros(len(items) + 1, dtype=np.int32)
    cu[1:] = np.cumsum([len(it["input_ids"]) for it in items])
    out = {
        "input_ids": torch.from_numpy(np.concatenate([it["input_ids"].numpy() for it in items])[None]),
        "cu_seqlens": torch.from_numpy(cu),
        "mask": torch.from_numpy(np.ones((1, int(cu[-1])), dtype=bool)),
    }
    for k in _PER_BASE:
        if k in items[0]:
            out[k] = torch.from_numpy(np.concatenate([it[k].numpy() for it in items])[None])
    return {**out, **_metadata(items)}
