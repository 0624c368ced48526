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
from hnet_genomics.model.cache import take_rows

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


def model_data_config(model: HNetLM) -> tuple[DataConfig, str | None]:
    """The data policies (case, ambiguity codes) ``model`` was trained with, and a note when it did not record
    them (saved by an older version): then today's defaults."""
    if model.data_encoding is not None:
        return DataConfig(**model.data_encoding), None
    d = DataConfig()
    return d, (
        f"the model did not record how its training read sequence (saved before encoding.json existed); "
        f"reading it with the defaults: soft_mask={d.soft_mask}, n_policy={d.n_policy}"
    )


@dataclass
class InferenceEngine:
    """A model in eval mode on ``device``, run ``batch_size`` sequences at a time at ``precision``; sequence is
    read with ``data_cfg``, by default the policies the model was trained with (``model_data_config``)."""

    model: HNetLM
    device: str = "cpu"
    precision: str = "fp32"
    batch_size: int = 16
    timing: Timing = field(default_factory=Timing)
    data_cfg: DataConfig | None = None
    encoding_note: str | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError("--batch-size must be at least 1")
        self.model = self.model.to(self.device).eval()
        if self.data_cfg is None:
            self.data_cfg, self.encoding_note = model_data_config(self.model)

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

        data_cfg = data_cfg or self.data_cfg or DataConfig()
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

    def run_shared_prefix(
        self,
        jobs: Iterable[T],
        prefix: Callable[[T], np.ndarray],
        suffixes: Callable[[T], list[np.ndarray]],
    ) -> Iterator[tuple[T, list[Continued]]]:
        """``(job, one Continued per suffix)`` for every job, in order: each job's prefix (uint8 byte ids) runs
        once, and every one of its suffixes continues the model state it left (``HNetLM.forward_from``), in
        padded batches of ``batch_size`` rows that mix the suffixes of several jobs. Every value equals what
        one forward pass over prefix + suffix gives, up to float rounding."""
        it = iter(jobs)
        while group := list(islice(it, self.batch_size)):
            t0 = time.perf_counter()
            prefixes, tails = [prefix(j) for j in group], [suffixes(j) for j in group]
            self.timing.prepare_s += time.perf_counter() - t0
            out: list[list[Continued]] = [[] for _ in group]
            for empty in (True, False):  # a row continued from the initial state has no prediction for its first base
                members = [i for i, p in enumerate(prefixes) if (len(p) == 0) == empty]
                if members:
                    self._continue(members, [prefixes[i] for i in members], tails, out, empty)
            self.timing.sequences += sum(len(t) for t in tails)
            yield from zip(group, out)

    def _continue(
        self, members: list[int], prefixes: list[np.ndarray], tails: list[list[np.ndarray]], out: list, empty: bool
    ) -> None:
        model, t0 = self.model, time.perf_counter()
        with torch.inference_mode(), inference_precision(self.device, self.precision):
            if empty:
                state = model.init_state(len(members))
                first = torch.full((len(members), model.config.vocab_size), float("nan"), device=self.device)
            else:
                ids, mask = pad(prefixes)
                logits, state, _ = model.forward_from(
                    ids.to(self.device), model.init_state(len(members)), mask.to(self.device)
                )
                first = torch.gather(
                    logits, 1, (mask.sum(1) - 1).to(self.device)[:, None, None].expand(-1, 1, logits.shape[-1])
                )[:, 0]
                self.timing.bases += int(mask.sum())
            rows_ = [(k, i, s) for k, i in enumerate(members) for s in tails[i]]
            for start in range(0, len(rows_), self.batch_size):
                chunk = rows_[start : start + self.batch_size]
                ids, mask = pad([s for _, _, s in chunk])
                ids, mask = ids.to(self.device), mask.to(self.device)
                which = torch.tensor([k for k, _, _ in chunk], device=self.device)
                logits, _, levels = model.forward_from(ids, take_rows(state, which), mask)
                lp = continued_log_probs(first[which], logits, ids)
                b1 = levels[0][0] if levels else torch.zeros_like(mask)
                for (_, i, _), (lp_row, b_row) in zip(chunk, rows([lp, b1], mask)):
                    out[i].append(Continued(lp_row, b_row))
                self.timing.bases += int(mask.sum())
        self.timing.model_s += time.perf_counter() - t0


@dataclass
class Continued:
    """Per base of one suffix after a shared prefix: ``ln p(x_t | prefix, suffix before t)`` in nats (NaN for
    the first base when the prefix is empty) and the stage-1 boundary decision (all False for an isotropic
    model)."""

    log_probs: np.ndarray
    boundaries: np.ndarray


def continued_log_probs(first: torch.Tensor, logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """(B, L) ln p of each suffix byte: the first from ``first`` (B, vocab), the prefix's last logits."""
    pred = torch.cat([first[:, None].float(), logits[:, :-1].float()], dim=1)
    return torch.log_softmax(pred, dim=-1).gather(-1, ids[..., None])[..., 0]


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
