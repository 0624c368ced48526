"""One engine that runs a trained model over sequence for every command that reads a model out.

Boundary tracks, likelihood tracks, variant scores and embeddings differ only in what they take from a
forward pass (a *readout*) and in which sequences they feed; batching, padding, device, precision and the
walk over a genome's windows live here once. A readout is ``f(model, ids, mask) -> list`` with one result
per row of the (B, L) batch, already on the CPU; ``rows`` cuts batch-shaped arrays back to each row's length.

The engine also keeps the wall time it spent reading and encoding sequence apart from the time in the
model (forward pass plus readout, which ends on the CPU and therefore waits for the device), so benchmarks
can say where the time goes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch

from hnet_genomics.config import DataConfig
from hnet_genomics.data.encoding import encode_window, reverse_complement
from hnet_genomics.devices import inference_precision
from hnet_genomics.errors import ConfigError
from hnet_genomics.inference.windows import SpanT, Window, plan_windows

if TYPE_CHECKING:
    from hnet_genomics.model.lm import HNetLM

T = TypeVar("T")
Readout = Callable[["HNetLM", torch.Tensor, torch.Tensor], list]


@dataclass
class Timing:
    """Seconds spent preparing input (FASTA reads, encoding, padding) and inside the model (with readout)."""

    prepare_s: float = 0.0
    model_s: float = 0.0
    sequences: int = 0
    bases: int = 0


@dataclass
class InferenceEngine:
    """A model in eval mode on ``device``, run ``batch_size`` sequences at a time at ``precision``."""

    model: HNetLM
    device: str = "cpu"
    precision: str = "fp32"
    batch_size: int = 16
    timing: Timing = field(default_factory=Timing)

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError("--batch-size must be at least 1")
        self.model = self.model.to(self.device).eval()

    def run(self, items: Iterable[T], encode: Callable[[T], np.ndarray], readout: Readout) -> Iterator[tuple[T, Any]]:
        """``(item, readout result)`` for every item, in order; ``encode`` gives its uint8 byte ids."""
        it = iter(items)
        while batch := list(islice(it, self.batch_size)):
            t0 = time.perf_counter()
            seqs = [encode(x) for x in batch]
            ids, mask = pad(seqs)
            ids, mask = ids.to(self.device), mask.to(self.device)
            t1 = time.perf_counter()
            with torch.inference_mode(), inference_precision(self.device, self.precision):
                results = readout(self.model, ids, mask)
            self.timing.prepare_s += t1 - t0
            self.timing.model_s += time.perf_counter() - t1
            self.timing.sequences += len(batch)
            self.timing.bases += sum(len(s) for s in seqs)
            yield from zip(batch, results)

    def windows(
        self,
        genome,
        regions: Iterable[SpanT],
        window: int,
        overlap: int,
        readout: Readout,
        data_cfg: DataConfig | None = None,
        phase: int = 0,
        strands: tuple[str, ...] = ("+",),
        progress: bool = False,
        desc: str = "inference",
    ) -> Iterator[tuple[Window[SpanT], str, Any]]:
        """``(window, strand, result)`` over the windows tiling ``regions`` (``windows.plan_windows``).

        With ``strands=("+", "-")`` each window is also run reverse-complemented, right after its forward
        pass; results stay in the order of the sequence that went in (reverse them to get base order).
        Memory is bounded by one batch of windows, whatever the length of the chromosome.
        """
        from tqdm import tqdm

        data_cfg = data_cfg or DataConfig()
        regions = list(regions)
        bar = tqdm(
            total=sum(r.end - r.start for r in regions),
            unit="bp",
            unit_scale=True,
            disable=not progress,
            desc=desc,
            dynamic_ncols=True,
        )
        items = ((w, s) for r in regions for w in plan_windows(r, window, overlap, phase) for s in strands)

        def encode(item: tuple[Window[SpanT], str]) -> np.ndarray:
            w, strand = item
            ids = encode_region(genome, w.region.chrom, w.start, w.end, data_cfg)
            return reverse_complement(ids) if strand == "-" else ids

        with bar:
            for (w, strand), result in self.run(items, encode, readout):
                if strand == strands[-1]:
                    bar.update(w.end - w.keep_from)
                yield w, strand, result


def encode_region(genome, chrom: str, start: int, end: int, data_cfg: DataConfig) -> np.ndarray:
    """Bases ``[start, end)`` after the data policies (case, ambiguity codes), as uint8 byte ids."""
    raw = genome.fetch(chrom, start, end)
    return np.frombuffer(encode_window(raw, data_cfg, str(genome.path), chrom, start).ids, np.uint8)


def pad(seqs: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded (B, L) int64 ids (padding byte 0) and the (B, L) mask of real positions."""
    length = max(len(s) for s in seqs)
    ids = np.zeros((len(seqs), length), dtype=np.uint8)
    mask = np.zeros((len(seqs), length), dtype=bool)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = s
        mask[i, : len(s)] = True
    return torch.from_numpy(ids).long(), torch.from_numpy(mask)


def rows(arrays: list[torch.Tensor], mask: torch.Tensor) -> list[list[np.ndarray]]:
    """Batch-shaped (B, L, ...) tensors -> per row, each array cut to that row's real length, on the CPU."""
    lengths = mask.sum(1).tolist()
    host = [a.cpu().numpy() for a in arrays]
    return [[a[i, :n] for a in host] for i, n in enumerate(lengths)]
