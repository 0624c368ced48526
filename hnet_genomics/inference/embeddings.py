"""Sequence and chunk embeddings from a trained model, over sequences of any length.

Stages: stage 0 is the base level (the final hidden state of every base, what the LM head reads); stage s
>= 1 is the sequence of stage-s chunks of an H-Net, each represented by the output of the network that runs
on them (for the innermost stage, the main network). Poolings, per sequence:

- ``mean``: mean over bases of each base's stage representation (at stage s >= 1, the vector of the chunk
  the base lies in, so chunks weigh by their length);
- ``chunk``: mean over the stage's chunks, each once (stage >= 1; ``tasks.heads`` pooling ``chunk``);
- ``last``: the representation of the last base (a causal model's only position that read everything).

Sequences longer than the window are tiled by the inference engine's windows: a base's vector comes from
the window that gives it the most left context, a chunk's from the window that holds its first base, and
a chunk ends where the next stitched chunk starts, as in the boundary tracks. A sequence that fits in one
window gets exactly the model's own features.

Strands (``embed_stranded``): a span on the ``-`` strand is embedded as its reverse complement, read 5' to 3'
on that strand (its chunks in that order, with genomic coordinates); ``rc_average`` embeds every span in
both orientations and averages the two vectors, so a sequence and its reverse complement get one vector.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from hnet_genomics.config import DataConfig
from hnet_genomics.data.encoding import reverse_complement
from hnet_genomics.errors import ConfigError
from hnet_genomics.inference.engine import InferenceEngine, rows
from hnet_genomics.inference.readouts import forward_levels, level_bases
from hnet_genomics.inference.windows import Span, Window

if TYPE_CHECKING:
    from hnet_genomics.model.lm import HNetLM

POOLINGS = ("mean", "chunk", "last")


@dataclass
class EmbeddingConfig:
    """What ``embed`` reads out (options of the same names)."""

    pooling: str = "mean"
    stage: int | None = None  # default: 0 for mean and last, 1 for chunk
    per_chunk: bool = False  # also every chunk of chunk_stage() with its coordinates
    rc_average: bool = False  # mean of the vectors of both orientations

    def resolved_stage(self, num_stages: int) -> int:
        if self.pooling not in POOLINGS:
            raise ConfigError(f"--pooling: '{self.pooling}' is not one of {', '.join(POOLINGS)}")
        stage = self.stage if self.stage is not None else (1 if self.pooling == "chunk" else 0)
        if not 0 <= stage <= num_stages:
            raise ConfigError(
                f"--stage {stage}: this model has stages 0 (bases) to {num_stages}"
                + (" (it is isotropic: no chunks)" if num_stages == 0 else "")
            )
        if self.pooling == "chunk" and stage == 0:
            raise ConfigError("--pooling chunk needs --stage 1 or deeper (stage 0 has bases, not chunks)")
        if self.per_chunk and num_stages == 0:
            raise ConfigError("--per-chunk needs an H-Net; an isotropic model has no chunks")
        if self.per_chunk and self.rc_average:
            raise ConfigError(
                "--per-chunk with --rc-average: the two orientations have different chunks; write the chunks "
                "of each strand with --per-chunk alone"
            )
        return stage

    def chunk_stage(self, num_stages: int) -> int:
        return max(self.resolved_stage(num_stages), 1)


def feature_readout(stages: tuple[int, ...]):
    """Readout: per row, for each stage in ``stages``, ``(vectors (n, d) fp32, first base of each (n,))``."""

    def readout(model: HNetLM, ids: torch.Tensor, mask: torch.Tensor) -> list:
        out = model(ids, mask=mask)
        batch, length = ids.shape
        bases = level_bases(forward_levels(out), batch, length, ids.device) if out.boundary_masks else None
        per_stage = []
        for s in stages:
            if s == 0:
                vec, pos, valid = out.hidden_states, bases[0] if bases else None, mask
                pos = torch.arange(ids.shape[1], device=ids.device).expand_as(ids) if pos is None else pos
            else:
                assert bases is not None  # only an H-Net, which has boundary masks, has stages >= 1
                vec, pos, valid = out.stage_hidden[s - 1], bases[s], out.level_masks[s]
            per_stage.append(rows([vec.float(), pos], valid))
        return [[tuple(stage_rows[i]) for stage_rows in per_stage] for i in range(ids.shape[0])]

    return readout


@dataclass
class ItemEmbedding:
    """One sequence's pooled vector and, if asked for, its chunks (absolute starts/ends) and their vectors."""

    span: Span
    vector: np.ndarray
    chunk_starts: np.ndarray | None = None
    chunk_ends: np.ndarray | None = None
    chunk_vectors: np.ndarray | None = None


class _Pooler:
    """Accumulates one sequence's pieces window by window (see the module docstring for the rules)."""

    def __init__(self, span: Span, pooling: str, stage: int, chunk_stage: int | None) -> None:
        self.span, self.pooling, self.stage, self.chunk_stage = span, pooling, stage, chunk_stage
        self.total: np.ndarray | None = None
        self.weight = 0
        self.last: np.ndarray | None = None
        self.pending: tuple[int, np.ndarray] | None = None  # last chunk seen, its end not yet known
        self.starts: list[np.ndarray] = []
        self.vectors: list[np.ndarray] = []

    def add(self, w: Window, pieces: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
        vec, pos = pieces[self.stage]
        keep = (w.start + pos >= w.keep_from) & (w.start + pos < w.end)
        vec, starts = vec[keep], (w.start + pos[keep]).astype(np.int64)
        if len(vec):
            self.last = vec[-1]
        if self.stage == 0:
            self._sum(vec.sum(0, dtype=np.float64), len(vec))
        else:
            self._add_chunks(starts, vec)
        if self.chunk_stage is not None:
            cvec, cpos = pieces[self.chunk_stage]
            ckeep = (w.start + cpos >= w.keep_from) & (w.start + cpos < w.end)
            self.starts.append((w.start + cpos[ckeep]).astype(np.int64))
            self.vectors.append(cvec[ckeep])

    def _sum(self, total: np.ndarray, weight: int) -> None:
        self.total = total if self.total is None else self.total + total
        self.weight += weight

    def _add_chunks(self, starts: np.ndarray, vec: np.ndarray) -> None:
        if not len(starts):
            return
        if self.pending is not None:
            starts = np.concatenate(([self.pending[0]], starts))
            vec = np.concatenate((self.pending[1][None], vec))
        lengths = np.diff(starts)
        n = len(lengths)
        weights = lengths if self.pooling == "mean" else np.ones(n)
        if n:
            self._sum((vec[:n] * weights[:, None]).sum(0, dtype=np.float64), int(weights.sum()))
        self.pending = (int(starts[-1]), vec[-1])

    def finish(self) -> ItemEmbedding:
        if self.stage > 0 and self.pending is not None:
            start, vec = self.pending
            weight = self.span.end - start if self.pooling == "mean" else 1
            self._sum(vec.astype(np.float64) * weight, weight)
        if self.pooling == "last":
            vector = self.last
        else:
            assert self.total is not None  # add() sums at stage 0, and a span's first base opens a chunk at s >= 1
            vector = self.total / max(self.weight, 1)
        item = ItemEmbedding(self.span, np.asarray(vector, dtype=np.float32))
        if self.chunk_stage is not None:
            starts = np.concatenate(self.starts) if self.starts else np.zeros(0, np.int64)
            item.chunk_starts = starts
            item.chunk_ends = np.append(starts[1:], self.span.end)
            item.chunk_vectors = np.concatenate(self.vectors).astype(np.float32)
        return item


def embed_spans(
    engine: InferenceEngine,
    source,
    spans: Iterable[Span],
    cfg: EmbeddingConfig,
    window: int,
    overlap: int,
    data_cfg: DataConfig | None = None,
    progress: bool = False,
) -> Iterator[ItemEmbedding]:
    """One ``ItemEmbedding`` per span of ``source`` (a ``Genome`` or anything with ``fetch``/``path``), in order."""
    num_stages = engine.model.config.num_stages
    stage = cfg.resolved_stage(num_stages)
    chunk_stage = cfg.chunk_stage(num_stages) if cfg.per_chunk else None
    stages = tuple(sorted({stage} | ({chunk_stage} if chunk_stage is not None else set())))
    pooler: _Pooler | None = None
    for w, _, row in engine.windows(
        source, spans, window, overlap, feature_readout(stages), data_cfg, progress=progress, desc="embed"
    ):
        if w.keep_from == w.region.start:  # first window of the next span (spans may repeat)
            if pooler is not None:
                yield pooler.finish()
            pooler = _Pooler(w.region, cfg.pooling, stage, chunk_stage)
        assert pooler is not None  # the first window of the stream is the first of its span
        pooler.add(w, dict(zip(stages, row)))
    if pooler is not None:
        yield pooler.finish()


class ReverseComplemented:
    """``source`` read on the other strand: base x of a contig is the complement of base size - 1 - x."""

    def __init__(self, source) -> None:
        self.source, self.path, self.sizes = source, source.path, source.sizes

    def fetch(self, chrom: str, start: int, end: int) -> bytes:
        n = self.sizes[chrom]
        return reverse_complement(self.source.fetch(chrom, n - end, n - start))


def embed_stranded(
    engine: InferenceEngine,
    source,
    spans: Sequence[Span],
    strands: Sequence[str],
    cfg: EmbeddingConfig,
    window: int,
    overlap: int,
    progress: bool = False,
) -> list[ItemEmbedding]:
    """One ``ItemEmbedding`` per span, in order: ``-`` spans reverse-complemented, every span in both
    orientations averaged with ``cfg.rc_average`` (module docstring)."""
    minus = [s == "-" for s in strands]
    if cfg.rc_average:
        minus = [False] * len(spans)
    out: list[ItemEmbedding | None] = [None] * len(spans)
    passes = [(False, [i for i, m in enumerate(minus) if not m]), (True, [i for i, m in enumerate(minus) if m])]
    if cfg.rc_average:
        passes = [(False, list(range(len(spans)))), (True, list(range(len(spans))))]
    for reverse, which in passes:
        if not which:
            continue
        src = ReverseComplemented(source) if reverse else source
        view = [_flip(spans[i], source.sizes[spans[i].chrom]) if reverse else spans[i] for i in which]
        for i, item in zip(which, embed_spans(engine, src, view, cfg, window, overlap, progress=progress)):
            item = _unflip(item, spans[i], source.sizes[spans[i].chrom]) if reverse else item
            previous = out[i]
            if previous is not None:  # the other orientation of the same span
                item.vector = ((previous.vector.astype(np.float64) + item.vector) / 2).astype(np.float32)
            out[i] = item
    assert all(item is not None for item in out)
    return [item for item in out if item is not None]


@dataclass(frozen=True)
class _Flipped:
    """A span in the coordinates of ``ReverseComplemented``."""

    chrom: str
    start: int
    end: int


def _flip(span: Span, size: int) -> _Flipped:
    return _Flipped(span.chrom, size - span.end, size - span.start)


def _unflip(item: ItemEmbedding, span: Span, size: int) -> ItemEmbedding:
    """Back to genomic coordinates: a chunk at [x0, x1) of the reverse strand covers [size - x1, size - x0)."""
    starts, ends = item.chunk_starts, item.chunk_ends
    if starts is not None and ends is not None:
        item.chunk_starts, item.chunk_ends = size - ends, size - starts
    item.span = span
    return item
