"""The micro-batch a run trains with: the config's, or the largest that its own measurement says fits.

Before the first step, on the device each process trains on (its own GPU under DDP), ``FitMicroBatch``
measures what a training window keeps (``resources.measure_training_memory``) against the memory free there.
When the configured micro-batch would not fit in ``MEMORY_MARGIN`` of it, the run trains the largest
micro-batch that fits and divides the windows of an optimizer step, accumulating more micro-batches so that
every optimizer step still sees the same windows (bases per optimizer step unchanged), and says so in one
line; when not even one window fits, it stops with a one-line ``ConfigError``. All processes take the smallest
micro-batch any of them can hold (accumulation must agree across processes).

A resumed run may pick another split than the run that wrote its checkpoint (another GPU, other jobs beside
it): Lightning counts micro-batches in its loop state, so ``rescale_batch_progress`` converts those counts to
the new accumulation, and optimizer steps, validation and checkpoints stay on the same optimizer steps.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import lightning as L
import torch

from hnet_genomics.config import Config
from hnet_genomics.devices import lightning_precision
from hnet_genomics.training.datamodule import batch_size_for
from hnet_genomics.training.resources import (
    MEASURED_COMPRESSION_SCALE,
    MEMORY_MARGIN,
    available_bytes,
    measure_training_memory,
    plan_micro_batch,
)

log = logging.getLogger("hnet_genomics.training")


def with_micro_batch(config: Config, micro_batch: int, accumulate: int) -> Config:
    """``config`` training ``micro_batch`` windows per micro-batch, ``accumulate`` micro-batches per optimizer
    step (``tokens_per_batch``, when the config counts in bases, follows the windows)."""
    tc = config.train
    train = dataclasses.replace(
        tc,
        batch_size=micro_batch,
        tokens_per_batch=micro_batch * tc.seq_len if tc.tokens_per_batch else None,
        accumulate_grad_batches=accumulate,
    )
    return dataclasses.replace(config, train=train)


class FitMicroBatch(L.Callback):
    """Measure in ``setup`` (after the processes and their devices exist, before any data is loaded) and set the
    micro-batch and accumulation the trainer, data module and task run with; ``config`` and ``memory`` hold the
    outcome afterwards."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.memory: dict | None = None

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        tc = self.config.train
        device = trainer.strategy.root_device
        free = available_bytes(device)
        micro, accumulate = batch_size_for(self.config), tc.accumulate_grad_batches
        model = pl_module.model
        assert isinstance(model, torch.nn.Module)  # LMTask's HNetLM
        estimate = measure_training_memory(
            model.to(device), tc.seq_len, lightning_precision(str(trainer.precision)), seed=tc.seed
        )
        if device.type == "cuda":
            torch.cuda.empty_cache()  # the measurement's blocks go back before training allocates its own
        budget = None if free is None else int(MEMORY_MARGIN * free)
        # every process plans with the smallest budget any of them has, so all pick the same split
        if trainer.world_size > 1:  # (a process that cannot tell what is free plans with what the others have)
            mine = torch.tensor(math.inf if budget is None else budget, dtype=torch.float64, device=device)
            smallest = float(trainer.strategy.reduce(mine, reduce_op="min").item())
            budget = None if math.isinf(smallest) else int(smallest)
        if budget is not None:
            new_micro, new_accumulate = plan_micro_batch(estimate, budget, micro, accumulate)
        else:
            new_micro, new_accumulate = micro, accumulate
        self.memory = {
            "device": str(device),
            "free_bytes": free,
            "budget_bytes": budget,
            "per_window_bytes": estimate.per_window,
            "fixed_bytes": estimate.fixed,
            "params": estimate.params,
            "measured_at_compression_scale": MEASURED_COMPRESSION_SCALE,
            "configured": [micro, accumulate],
            "micro_batch": new_micro,
            "accumulate_grad_batches": new_accumulate,
            "estimated_step_bytes": estimate.step_bytes(new_micro),
        }
        if (new_micro, new_accumulate) == (micro, accumulate):
            return
        self.config = with_micro_batch(self.config, new_micro, new_accumulate)
        trainer.accumulate_grad_batches = new_accumulate
        trainer.val_check_interval = self.config.train.val_every * new_accumulate
        data = getattr(trainer, "datamodule", None)
        if data is not None:
            data.config = self.config  # GenomeDataModule
        pl_module.config = self.config  # type: ignore[assignment]  # LMTask
        pl_module.hparams["config"] = self.config.to_dict()  # checkpoints record the split that trained
        if trainer.is_global_zero:
            assert budget is not None
            log.warning(
                "memory: %d x %s bases per micro-batch would keep about %.1f GiB (%s MiB per window, measured on "
                "%s), %.1f GiB may be used: training %d windows per micro-batch x %d accumulated instead of "
                "%d x %d (%s bases per optimizer step, unchanged)",
                micro,
                f"{tc.seq_len:,}",
                estimate.step_bytes(micro) / 2**30,
                f"{estimate.per_window / 2**20:,.0f}",
                device,
                budget / 2**30,
                new_micro,
                new_accumulate,
                micro,
                accumulate,
                f"{micro * accumulate * tc.seq_len:,}",
            )


_COUNTERS = ("ready", "started", "processed", "completed")


def rescale_batch_progress(loops: dict, old_accumulate: int, new_accumulate: int) -> None:
    """Convert the micro-batch counts in a checkpoint's loop state from ``old_accumulate`` micro-batches per
    optimizer step to ``new_accumulate``, in place.

    Each count becomes (optimizer steps taken) x ``new_accumulate`` plus its own offset from the ``ready``
    count (Lightning saves mid-hook with ``completed`` one behind). A partly accumulated step (a run stopped
    between two optimizer steps) is dropped: its gradients are not in the checkpoint anyway.
    """
    if old_accumulate == new_accumulate:
        return
    epoch_loop = (loops or {}).get("fit_loop", {})
    progress = epoch_loop.get("epoch_loop.batch_progress")
    if not isinstance(progress, dict):
        return
    for scope in ("total", "current"):
        counts = progress.get(scope)
        if not isinstance(counts, dict) or "ready" not in counts:
            continue
        ready = int(counts["ready"])
        steps = ready // old_accumulate
        for name in _COUNTERS:
            if name in counts:
                counts[name] = max(steps * new_accumulate + int(counts[name]) - ready, 0)


def rescale_for_resume(checkpoint: dict, accumulate: int) -> None:
    """Before Lightning restores its loops from ``checkpoint``: convert their micro-batch counts to ``accumulate``
    from the accumulation that wrote it (recorded by ``LMTask``; older checkpoints: the one their config set)."""
    state = checkpoint.get("hnet_genomics", {})
    config = checkpoint.get("hyper_parameters", {}).get("config", {})
    written_with = state.get("accumulate_grad_batches", config.get("train", {}).get("accumulate_grad_batches"))
    if written_with:
        rescale_batch_progress(checkpoint.get("loops", {}), int(written_with), accumulate)
