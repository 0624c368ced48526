"""Order-K Markov reference model over A/C/G/T: the bits-per-base a learned DNA model has to beat.

A language model is only interesting on DNA if it beats a k-mer model fitted to the same training
windows, so ``hnet-genomics eval --baseline markov --order K`` reports this number next to the network's.

Choices that make the number reproducible:

- Alphabet: A, C, G, T after upper-casing (soft-masked repeats are ordinary bases). A position is
  skipped, in fitting and in scoring, when its target or any of its K context bases is anything else
  (N, IUPAC ambiguity codes); ``bases`` in the result counts the positions actually scored.
- The first K bases of every interval are skipped rather than scored with a shorter context, so a
  split is scored from its own sequence only; on the demo region this drops K of ~220,000 test bases.
- Smoothing: hierarchical additive (Dirichlet) back-off. Order 0 uses Krichevsky-Trofimov (add-1/2)
  counts; each order k >= 1 adds ``prior_strength`` pseudo-counts distributed as the order k-1
  prediction: p_k(x|c) = (n(c,x) + B * p_{k-1}(x|c')) / (n(c) + B), c' = c without its most distant
  base. DNA is close to random at short range, so a context needs on the order of a hundred
  observations before its own statistics beat its shorter suffix: B = 128 was chosen on the validation
  split of the embedded human region (orders 8-12). Plain add-1/2 smoothing and Witten-Bell both get
  worse than order 6 from order 8 on (a 2 Mb genome sees most 10-mer contexts once or never), while
  this back-off keeps improving up to order 12 because repeats give long contexts real counts.

Counts live in one uint32 table of 4^(k+1) entries per order k <= K (order 12: ~360 MB in total) and
are filled with vectorised rolling k-mer codes, so fitting is a handful of numpy passes per chunk.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hnet_genomics.errors import ConfigError, DataError

MAX_ORDER = 13  # 4^14 uint32 counts = 1 GiB for the top table; beyond that the tables outgrow a workstation
CHUNK_BASES = 1 << 22  # long intervals are read in pieces of this size (plus K bases of overlap)
_DENSE_LIMIT = 1 << 22  # tables up to this size are filled with bincount, larger ones with unique()

_BASE_CODE = np.full(256, -1, dtype=np.int8)
for _i, _b in enumerate(b"ACGT"):
    _BASE_CODE[_b] = _i
    _BASE_CODE[_b + 32] = _i  # lower case (soft-masked repeat)


class _Region(Protocol):
    chrom: str
    start: int
    end: int


class _Fetcher(Protocol):
    def fetch(self, chrom: str, start: int, end: int) -> bytes: ...


def encode_bases(seq: bytes) -> np.ndarray:
    """ACGT (either case) -> 0..3, everything else -> -1."""
    return _BASE_CODE[np.frombuffer(seq, dtype=np.uint8)]


def _scored_positions(codes: np.ndarray, order: int) -> np.ndarray:
    """Positions i >= order whose window codes[i-order : i+1] is entirely ACGT."""
    bad = np.concatenate(([0], np.cumsum(codes < 0, dtype=np.int64)))
    pos = np.arange(order, len(codes), dtype=np.int64)
    return pos[bad[pos + 1] - bad[pos - order] == 0]


def _context_codes(codes: np.ndarray, pos: np.ndarray, order: int) -> Iterator[np.ndarray]:
    """For k = 0..order, the code of the k bases before each position (nearest base in the low bits).

    Building order k from order k-1 by adding one more distant base keeps every order's code a suffix
    code, which is exactly the back-off chain the interpolation walks.
    """
    ctx = np.zeros(len(pos), dtype=np.int64)
    yield ctx
    for k in range(1, order + 1):
        ctx = ctx + (codes[pos - k].astype(np.int64) << (2 * (k - 1)))
        yield ctx


def _accumulate(table: np.ndarray, idx: np.ndarray) -> None:
    if table.size <= _DENSE_LIMIT:
        table += np.bincount(idx, minlength=table.size).astype(table.dtype)
    else:  # avoid a dense int64 temporary of the whole table
        keys, n = np.unique(idx, return_counts=True)
        table[keys] += n.astype(table.dtype)


def _interval_codes(genome: _Fetcher, intervals: Iterable[_Region], order: int) -> Iterator[np.ndarray]:
    """Encoded pieces of each interval; consecutive pieces overlap by ``order`` bases so no context is cut."""
    for iv in intervals:
        start = iv.start
        while start + order < iv.end:
            stop = min(iv.end, start + CHUNK_BASES + order)
            yield encode_bases(genome.fetch(iv.chrom, start, stop))
            start = stop - order


class MarkovModel:
    """P(base | previous ``order`` bases), each order backed off to the next-shorter context."""

    def __init__(self, order: int, prior_strength: float = 128.0) -> None:
        if not 0 <= order <= MAX_ORDER:
            raise ConfigError(f"markov order must be between 0 and {MAX_ORDER}, got {order}")
        if prior_strength <= 0:
            raise ConfigError(f"markov prior_strength must be positive, got {prior_strength}")
        self.order = order
        self.prior_strength = prior_strength
        self.counts = [np.zeros(4 ** (k + 1), dtype=np.uint32) for k in range(order + 1)]
        self.fitted_bases = 0

    # -- array level -------------------------------------------------------------------------------------

    def fit_codes(self, codes: np.ndarray) -> None:
        """Add the transitions of one encoded sequence (see ``encode_bases``) to the counts."""
        pos = _scored_positions(codes, self.order)
        target = codes[pos].astype(np.int64)
        for table, ctx in zip(self.counts, _context_codes(codes, pos, self.order)):
            _accumulate(table, ctx * 4 + target)
        self.fitted_bases += len(pos)

    def score_codes(self, codes: np.ndarray) -> tuple[float, int]:
        """(total bits, scored bases) of one encoded sequence under the current counts."""
        pos = _scored_positions(codes, self.order)
        if len(pos) == 0:
            return 0.0, 0
        target = codes[pos].astype(np.int64)
        prob = np.empty(len(pos))  # order k-1 prediction, the prior of order k
        for k, (table, ctx) in enumerate(zip(self.counts, _context_codes(codes, pos, self.order))):
            rows = table.reshape(-1, 4)[ctx].astype(np.float64)  # successor counts of each context
            hits = np.take_along_axis(rows, target[:, None], axis=1)[:, 0]
            seen = rows.sum(axis=1)
            if k == 0:
                prob = (hits + 0.5) / (seen + 2.0)
            else:
                prob = (hits + self.prior_strength * prob) / (seen + self.prior_strength)
        return float(-np.log2(prob).sum()), len(pos)

    # -- genome level ------------------------------------------------------------------------------------

    def fit(self, genome: _Fetcher, intervals: Iterable[_Region]) -> MarkovModel:
        for codes in _interval_codes(genome, intervals, self.order):
            self.fit_codes(codes)
        if self.fitted_bases == 0:
            raise DataError(
                f"markov-{self.order}: the training intervals contain no run of "
                f"{self.order + 1} consecutive A/C/G/T bases to fit"
            )
        return self

    def bpb(self, genome: _Fetcher, intervals: Iterable[_Region]) -> dict[str, float | int]:
        """Mean -log2 p(base | previous K bases) over the scorable positions of ``intervals``."""
        bits, bases = 0.0, 0
        for codes in _interval_codes(genome, intervals, self.order):
            b, n = self.score_codes(codes)
            bits += b
            bases += n
        if bases == 0:
            raise DataError(
                f"markov-{self.order}: the evaluation intervals contain no run of "
                f"{self.order + 1} consecutive A/C/G/T bases to score"
            )
        return {"bpb": bits / bases, "bases": bases}


def _with_progress(intervals: list, desc: str, enabled: bool) -> Iterable:
    """Intervals, with a bar over their bases when someone is watching (fitting hg38 at order 12 takes minutes)."""
    if not enabled:
        return intervals
    from tqdm import tqdm

    bar = tqdm(
        total=sum(iv.end - iv.start for iv in intervals), unit="bp", unit_scale=True, desc=desc, dynamic_ncols=True
    )

    def walk():
        with bar:
            for iv in intervals:
                yield iv
                bar.update(iv.end - iv.start)

    return walk()


def markov_eval(
    fasta: str | Path,
    intervals_bed: str | Path | None,
    data_cfg: Any,
    order: int,
    split: str = "test",
    progress: bool = False,
) -> dict[str, Any]:
    """Fit on the train split of ``fasta`` and score ``split``: the reference row of an eval table.

    ``data_cfg`` is the ``DataConfig`` whose split rules the neural model was trained with.
    """
    from hnet_genomics.data.genome import Genome
    from hnet_genomics.data.intervals import make_splits

    model = MarkovModel(order)  # checks the order before the genome is opened
    genome = Genome(fasta)
    splits = make_splits(genome, data_cfg, intervals_bed)
    if split not in splits:
        raise ConfigError(f"unknown split '{split}' (available: {', '.join(splits)})")
    model.fit(genome, _with_progress(splits["train"], f"fit markov-{order}", progress))
    scored = model.bpb(genome, _with_progress(splits[split], f"score {split}", progress))
    return {
        "model": f"markov-{order}",
        "split": split,
        "bpb": scored["bpb"],
        "bases": scored["bases"],
        "train_bases": model.fitted_bases,
        "prior_strength": model.prior_strength,
    }
