"""Training speed in bases per second, with and without the warm-up steps.

A run's first optimizer steps are not its speed: on a GPU they compile and autotune Triton kernels (minutes on
a fresh machine for mamba-ssm's), allocate the caching allocator's pools and fill the data loader. ``Throughput``
times training from the first micro-batch and, apart, from the end of the first ``WARMUP_STEPS`` optimizer
steps (the steady state), both without the time spent in validation. Its clock reads synchronise the device
only at those few points (start, end, each validation), never per step.
"""

from __future__ import annotations

import time

import lightning as L
import torch

WARMUP_STEPS = 2  # optimizer steps left out of the steady-state figure


def _sync(module: L.LightningModule) -> None:
    if module.device.type == "cuda":
        torch.cuda.synchronize(module.device)


class Throughput(L.Callback):
    """``summary()`` after ``fit``: bases/s from the first micro-batch (warm-up included) and in steady state
    (None when the run stopped within the warm-up), and the warm-up's own seconds. A resumed run warms up
    again and is timed from its own first micro-batch; ``bases_seen`` counts every process's bases."""

    def __init__(self, warmup_steps: int = WARMUP_STEPS) -> None:
        self.warmup_steps = warmup_steps
        self._first: tuple[float, int] | None = None  # (time, bases_seen) at the first micro-batch
        self._steady: tuple[float, int] | None = None  # (time, bases_seen) when the warm-up ended
        self._end: tuple[float, int] | None = None
        self._paused = 0.0  # validation time, before and after the warm-up ended
        self._paused_in_warmup = 0.0
        self._pause_start: float | None = None
        self._start_step = 0

    @staticmethod
    def _bases(module) -> int:
        return int(module.bases_seen)  # LMTask's count, every process's bases

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._first is None:
            _sync(pl_module)
            self._first = (time.perf_counter(), self._bases(pl_module))
            self._start_step = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        steps = trainer.global_step - self._start_step
        if self._steady is None and steps >= self.warmup_steps:
            _sync(pl_module)  # the warm-up's queued work finishes on the warm-up's clock
            self._steady = (time.perf_counter(), self._bases(pl_module))
            self._paused_in_warmup = self._paused

    def on_validation_start(self, trainer, pl_module) -> None:
        if self._first is not None and self._end is None and not trainer.sanity_checking:
            _sync(pl_module)
            self._pause_start = time.perf_counter()

    def on_validation_end(self, trainer, pl_module) -> None:
        if self._pause_start is not None:
            _sync(pl_module)
            self._paused += time.perf_counter() - self._pause_start
            self._pause_start = None

    def on_train_end(self, trainer, pl_module) -> None:
        if self._first is not None:
            _sync(pl_module)
            self._end = (time.perf_counter(), self._bases(pl_module))

    def summary(self, unit: str = "base") -> dict:
        """``bases_per_second`` (steady state), ``bases_per_second_with_warmup``, ``warmup_steps``,
        ``warmup_seconds`` (training time of those steps, validation excluded); ``unit`` "byte" names the rates
        of a text run ``bytes_per_second...``."""
        rate, rate_warm = f"{unit}s_per_second", f"{unit}s_per_second_with_warmup"
        out: dict = {
            rate: None,
            rate_warm: None,
            "warmup_steps": self.warmup_steps,
            "warmup_seconds": None,
        }
        if self._first is None or self._end is None:
            return out
        (t0, b0), (t1, b1) = self._first, self._end
        seconds = t1 - t0 - self._paused
        if seconds > 0:
            out[rate_warm] = (b1 - b0) / seconds
        if self._steady is not None:
            ts, bs = self._steady
            out["warmup_seconds"] = ts - t0 - self._paused_in_warmup
            steady_seconds = t1 - ts - (self._paused - self._paused_in_warmup)
            if steady_seconds > 0 and b1 > bs:
                out[rate] = (b1 - bs) / steady_seconds
        return out
