"""`hnet-genomics pretrain`: one config, one genome, one output folder.

OUT/checkpoints/{last,best}.ckpt (atomic), OUT/model/ (best-on-validation weights, ``from_pretrained``),
OUT/metrics.json, OUT/curves.png, OUT/logs/metrics.csv. The test split is never touched here.

Before the first step the run measures what a micro-batch keeps on its device and, when the configured one
would not fit, trains the largest that does with more accumulation (``training/microbatch.py``; the same
bases per optimizer step). metrics.json's ``bases_per_second`` leaves out the warm-up steps (kernel compiles
and autotuning); ``bases_per_second_with_warmup`` counts from the first micro-batch (``training/throughput.py``).

OUT is new, empty or one of our own runs: a folder holding anything else is refused before training, so
nothing of the user's is ever replaced. SIGTERM (a scheduler's pre-emption or time limit) stops training after
the current step with ``last.ckpt`` saved there, for ``--resume``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import threading
import warnings
from pathlib import Path
from typing import Literal

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from hnet_genomics.atomic import (
    foreign_entries,
    make_dirs,
    remove_created,
    remove_empty,
    sweep_stale,
    write_json_atomic,
)
from hnet_genomics.config import Config, save_config
from hnet_genomics.data.intervals import make_splits
from hnet_genomics.devices import lightning_precision
from hnet_genomics.errors import CheckpointError, ConfigError, OutputError, Terminated
from hnet_genomics.kernels import dispatch
from hnet_genomics.model.lm import ENCODING_KEYS, MODEL_FILES
from hnet_genomics.training.checkpoint import AtomicCheckpointIO, load_checkpoint_safely, load_for_resume
from hnet_genomics.training.curves import plot_curves, read_log_rows, restore_earlier_log
from hnet_genomics.training.datamodule import GenomeDataModule, batch_size_for
from hnet_genomics.training.evaluate import evaluate_bpb
from hnet_genomics.training.microbatch import FitMicroBatch
from hnet_genomics.training.module import LMTask
from hnet_genomics.training.optim import default_lr_multipliers
from hnet_genomics.training.sources import open_source
from hnet_genomics.training.throughput import Throughput


def _strategy(name: str):
    if name == "fsdp":
        from lightning.pytorch.strategies import FSDPStrategy

        from hnet_genomics.model.blocks import ResidualBlock

        return FSDPStrategy(auto_wrap_policy={ResidualBlock})
    return name


TrainerPrecision = Literal["32-true", "bf16-mixed", "16-mixed"]  # train.precision once "auto" is resolved


def _precision(config: Config) -> TrainerPrecision:
    p = config.train.precision
    if p != "auto":
        return p
    on_gpu = config.train.accelerator in ("auto", "gpu") and torch.cuda.is_available()
    return "bf16-mixed" if on_gpu else "32-true"


# What a run folder holds: top-level entries, and the files each of our sub-folders may contain.
RUN_ENTRIES = {
    "checkpoints": None,
    "model": MODEL_FILES,
    "logs": ("metrics.csv", "hparams.yaml"),
    "metrics.json": (),
    "curves.png": (),
    "config.yaml": (),
    ".snakemake_timestamp": (),
}  # Snakemake marks a finished directory() output with it


def check_run_dir(out: Path, resume: bool) -> None:
    """Refuse an ``--out`` that is a file or holds anything a pretraining run does not write."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out}: exists and is not a folder")
    if not out.is_dir():
        return
    foreign = [n for n in foreign_entries(out, RUN_ENTRIES)]
    for name, owned in RUN_ENTRIES.items():
        sub = out / name
        if owned == () and sub.is_dir():
            foreign.append(f"{name}/")
        elif owned is not None and owned != () and sub.exists():
            foreign += [f"{name}/{n}" for n in (foreign_entries(sub, owned) if sub.is_dir() else [""])]
        elif owned is None and sub.is_dir():
            foreign += [f"{name}/{n}" for n in foreign_entries(sub, ()) if not n.endswith(".ckpt")]
    if foreign:
        raise OutputError(
            f"--out {out}: holds files a pretraining run does not write ({', '.join(foreign[:3])}"
            f"{', ...' if len(foreign) > 3 else ''}); pretrain writes into a new or empty folder "
            f"or continues its own run there with --resume: choose another --out"
        )
    if not resume and (out / "checkpoints" / "last.ckpt").exists():
        raise CheckpointError(f"{out}: already holds checkpoints; pass --resume to continue or choose another --out")


class _CheckpointOnSigterm(L.Callback):
    """Lightning stops after the current step when SIGTERM arrives; save that state as ``last.ckpt`` so that
    ``--resume`` loses nothing of a pre-empted job."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_exception(self, trainer, pl_module, exception) -> None:
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        if isinstance(exception, SIGTERMException):
            trainer.save_checkpoint(self.path, weights_only=False)


@contextlib.contextmanager
def _lightning_handles_sigterm():
    """During ``fit`` Lightning's own SIGTERM handler (stop at the end of the step) must run alone: one that
    raises at once (the CLI's) would interrupt an optimizer step half-way."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    if main:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        yield
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def quiet_lightning(quiet: bool):
    """Keep Lightning's banners, tips and warnings out of a ``--quiet`` run (errors still surface)."""
    if not quiet:
        yield
        return
    loggers = [logging.getLogger(name) for name in ("lightning", "lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def with_lr_multipliers(config: Config) -> Config:
    """The config with the per-stage LR multipliers it trains with written out (the paper's rule when unset),
    so config.yaml and the checkpoints record them."""
    if config.train.lr_multipliers is not None:
        return config
    train = dataclasses.replace(config.train, lr_multipliers=default_lr_multipliers(config.model))
    return dataclasses.replace(config, train=train)


def run_pretrain(
    config: Config,
    fasta: str | Path,
    out_dir: str | Path,
    intervals: str | Path | None = None,
    resume: bool = False,
    callbacks: list | None = None,
    progress: bool = True,
    quiet: bool = False,
    command: str | None = None,
) -> dict | None:
    """Train, select on validation, write the outputs. Returns the metrics on global rank 0, else None.

    ``fasta`` is the genome, or the text corpus of a ``data.kind: text`` config; ``command`` (the command line
    that started the run) is recorded in metrics.json with a description of the data, for the model card."""
    config = with_lr_multipliers(config)
    out = Path(out_dir)
    ckpt_dir = out / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    tc = config.train
    check_run_dir(out, resume)
    if tc.accelerator == "gpu" and not torch.cuda.is_available():
        raise ConfigError("train.accelerator gpu: torch sees no CUDA GPU on this machine (use cpu or auto)")
    source = open_source(fasta, config.data)
    splits = make_splits(source, config.data, intervals)
    if not splits["valid"]:
        raise ConfigError("the valid split is empty: validation (and model selection) needs held-out data")
    start_windows, ckpt_path, resumed_at = 0, None, 0
    if resume:
        ckpt = load_for_resume(last, config.to_dict())
        start_windows = int(ckpt.get("hnet_genomics", {}).get("windows_consumed", 0))
        ckpt_path, resumed_at = str(last), int(ckpt.get("global_step", 0))
        del ckpt

    dispatch.set_backend(tc.kernels)
    on_gpu = tc.accelerator in ("auto", "gpu") and torch.cuda.is_available()
    kernels = dispatch.report("cuda" if on_gpu else "cpu", "pretrain")
    if on_gpu and _precision(config) != "32-true":
        torch.set_float32_matmul_precision("high")  # TF32 for what autocast leaves in fp32 (router, losses)
    L.seed_everything(tc.seed, workers=True, verbose=False)
    task = LMTask(config)
    params = task.model.num_parameters()
    data = GenomeDataModule(config, source, splits, start_windows)
    periodic = ModelCheckpoint(
        dirpath=ckpt_dir,
        filename="last",
        every_n_train_steps=tc.checkpoint_every,
        save_top_k=1,
        enable_version_counter=False,
    )
    best = ModelCheckpoint(
        dirpath=ckpt_dir, filename="best", monitor="val_bpb", mode="min", save_top_k=1, enable_version_counter=False
    )
    fit_batch, throughput = FitMicroBatch(config), Throughput()
    created = make_dirs(out)
    try:
        with quiet_lightning(quiet):
            trainer = _fit(
                config,
                task,
                data,
                out,
                ckpt_path,
                resumed_at,
                [fit_batch, throughput, periodic, best, _CheckpointOnSigterm(last), *(callbacks or [])],
                progress,
            )
    except BaseException:
        if not last.exists():  # nothing to resume from in the folders this run made
            remove_created(created)
        remove_empty(created)
        raise
    if not trainer.is_global_zero:
        return None
    record = {
        **throughput.summary(config.data.unit),
        "memory_check": fit_batch.memory,
        "data": describe_data(fasta, config, source, splits),
        "command": command,
    }
    return _finish(fit_batch.config, task, trainer, source, splits, best.best_model_path, out, params, kernels, record)


def _fit(
    config: Config,
    task: LMTask,
    data: GenomeDataModule,
    out: Path,
    ckpt_path: str | None,
    resumed_at: int,
    callbacks: list,
    progress: bool,
) -> L.Trainer:
    last = out / "checkpoints" / "last.ckpt"
    sweep_stale(
        [
            last,
            out / "checkpoints" / "best.ckpt",
            out / "metrics.json",
            out / "curves.png",
            out / "config.yaml",
            out / "model",
        ]
    )  # what a killed earlier attempt left behind
    from lightning.fabric.utilities.exceptions import MisconfigurationException
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    try:
        trainer = _trainer(config, out, callbacks, progress)
    except MisconfigurationException as e:  # e.g. train.accelerator=gpu on a machine without one
        raise ConfigError(f"train settings: {str(e).splitlines()[0]}") from None
    log_csv = out / "logs" / "metrics.csv"
    earlier_log = read_log_rows(log_csv) if ckpt_path else []
    with warnings.catch_warnings(), _lightning_handles_sigterm():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*resuming from a checkpoint that ended before the epoch.*")
        warnings.filterwarnings("ignore", message=".*Previous log files in this directory will be deleted.*")
        warnings.filterwarnings("ignore", message=".*Checkpoint directory .* exists and is not empty.*")
        try:
            trainer.fit(task, datamodule=data, ckpt_path=ckpt_path)
        except SIGTERMException:
            raise Terminated(
                f"stopped at step {task.global_step}; {last} holds that state: continue with --resume"
            ) from None
        finally:
            restore_earlier_log(log_csv, earlier_log, resumed_at)
    # the final state, also when max_steps is not a multiple of checkpoint_every
    trainer.save_checkpoint(last, weights_only=False)
    return trainer


def _trainer(config: Config, out: Path, callbacks: list, progress: bool) -> L.Trainer:
    tc = config.train
    if progress:  # the bar reads its metrics (a wait for the device) only when it redraws: as often as the logs
        from lightning.pytorch.callbacks import TQDMProgressBar

        callbacks = [*callbacks, TQDMProgressBar(refresh_rate=tc.log_every)]
    return L.Trainer(
        accelerator=tc.accelerator,
        devices=tc.devices,
        num_nodes=tc.num_nodes,
        strategy=_strategy(tc.strategy),
        precision=_precision(config),
        max_steps=tc.max_steps,
        gradient_clip_val=tc.grad_clip or None,
        accumulate_grad_batches=tc.accumulate_grad_batches,
        val_check_interval=tc.val_every * tc.accumulate_grad_batches,
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        log_every_n_steps=tc.log_every,
        use_distributed_sampler=False,
        logger=CSVLogger(out, name="logs", version=""),
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        enable_progress_bar=progress,
        enable_model_summary=False,
        default_root_dir=out,
    )


def describe_data(path: str | Path, config: Config, source, splits: dict) -> dict:
    """What the run trained on, in its unit: the file, its records and size, and each split's size."""
    return {
        "path": str(path),
        "name": Path(path).name,
        "kind": config.data.kind,
        "records": len(source.sizes),
        "size": int(sum(source.sizes.values())),
        **{name: int(sum(iv.end - iv.start for iv in ivs)) for name, ivs in splits.items()},
    }


def _finish(
    config, task, trainer, source, splits, best_path, out: Path, params: int, kernels: dict, record: dict
) -> dict:
    """Save the selected weights, then score them on the full valid split where training ran: on the trainer's
    device and precision (an hg38 valid split is hours of fp32 CPU work, and ``kernels: gpu`` refuses CPU
    tensors), moving the model back to the CPU only afterwards. ``config`` is the one that trained (its
    micro-batch as the memory check set it); ``record`` what metrics.json adds: the throughput summary, the memory
    check, the data trained on and the command line."""
    model = task.model
    selected_step = int(task.global_step)
    if best_path and Path(best_path).is_file():
        state = load_checkpoint_safely(best_path)
        task.load_state_dict(state["state_dict"])
        selected_step = int(state.get("global_step", selected_step))
    model.trained_context = config.train.seq_len
    model.data_encoding = {k: getattr(config.data, k) for k in ENCODING_KEYS}  # read alike at inference
    model.save_pretrained(out / "model")  # copies every tensor to the CPU; weights are fp32 in mixed precision
    save_config(config, out / "config.yaml")
    tc = config.train
    device = trainer.strategy.root_device
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None  # training's peak
    final = evaluate_bpb(
        model,
        source,
        splits["valid"],
        tc.seq_len,
        config.data,
        batch_size=batch_size_for(config),
        max_windows=tc.final_val_windows,
        device=device,
        precision=lightning_precision(trainer.precision),
    )
    model.cpu()
    unit = config.data.unit  # "base", or "byte" for a text run: bpb is bits per base or per byte
    metrics = {
        "config": config.name,
        "unit": unit,
        "params": params,
        "seq_len": tc.seq_len,
        "steps": int(task.global_step),
        "selected_step": selected_step,
        "val_bpb": final["bpb"],
        f"val_{unit}s_scored": final["bases_scored"],
        "compression_ratios": final["compression_ratios"],
        "target_compression": list(config.model.target_compression),
        f"{unit}s_seen": int(task.bases_seen),
        "micro_batch": batch_size_for(config),
        "accumulate_grad_batches": tc.accumulate_grad_batches,
        f"flops_per_{unit}": task.model.flops_per_base(tc.seq_len, final["compression_ratios"] or None),
        "device": _device_name(trainer),
        "world_size": trainer.world_size,
        "precision": str(trainer.precision),
        "kernels": kernels,
        "peak_gpu_memory_gib": peak,
        "history": task.history,
        **record,
    }
    write_json_atomic(out / "metrics.json", metrics)
    plot_curves(out / "logs" / "metrics.csv", task.history, out / "curves.png", config.name, unit)
    return metrics


def _device_name(trainer) -> str:
    if trainer.strategy.root_device.type == "cuda":
        return torch.cuda.get_device_name(trainer.strategy.root_device)
    return f"{os.cpu_count()}-core CPU"
