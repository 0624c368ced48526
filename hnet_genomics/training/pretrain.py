"""`hnet-genomics pretrain`: one config, one genome, one output folder.

OUT/checkpoints/{last,best}.ckpt (atomic), OUT/model/ (best-on-validation weights, ``from_pretrained``),
OUT/metrics.json, OUT/curves.png, OUT/logs/metrics.csv. The test split is never touched here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from hnet_genomics.config import Config, save_config
from hnet_genomics.data.atomic import write_text_atomic
from hnet_genomics.data.intervals import make_splits
from hnet_genomics.errors import CheckpointError, ConfigError
from hnet_genomics.kernels import dispatch
from hnet_genomics.training.checkpoint import AtomicCheckpointIO, load_for_resume
from hnet_genomics.training.curves import plot_curves
from hnet_genomics.training.datamodule import GenomeDataModule, batch_size_for
from hnet_genomics.training.evaluate import evaluate_bpb
from hnet_genomics.training.module import LMTask
from hnet_genomics.training.optim import default_lr_multipliers
from hnet_genomics.training.resources import available_bytes, estimate_training_bytes
from hnet_genomics.training.sources import open_source


def _strategy(name: str):
    if name == "fsdp":
        from lightning.pytorch.strategies import FSDPStrategy

        from hnet_genomics.model.blocks import Block

        return FSDPStrategy(auto_wrap_policy={Block})
    return name


def _precision(config: Config) -> str:
    p = config.train.precision
    if p != "auto":
        return p
    on_gpu = config.train.accelerator in ("auto", "gpu") and torch.cuda.is_available()
    return "bf16-mixed" if on_gpu else "32-true"


def write_json_atomic(data: dict, path: Path) -> None:
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def warn_if_memory_tight(config: Config, params: int) -> None:
    on_gpu = config.train.accelerator in ("auto", "gpu") and torch.cuda.is_available()
    need = estimate_training_bytes(config, batch_size_for(config), params)
    have = available_bytes(on_gpu)
    if have is not None and need > 0.8 * have:
        warnings.warn(f"training may run out of memory: estimated {need / 2**30:.1f} GiB for batch "
                      f"{batch_size_for(config)} x {config.train.seq_len} bases, {have / 2**30:.1f} GiB available "
                      f"on the {'GPU' if on_gpu else 'host'}; lower train.batch_size or train.seq_len",
                      stacklevel=2)


def with_lr_multipliers(config: Config) -> Config:
    """The config with the per-stage LR multipliers it trains with written out (the paper's rule when unset),
    so config.yaml and the checkpoints record them."""
    if config.train.lr_multipliers is not None:
        return config
    train = dataclasses.replace(config.train, lr_multipliers=default_lr_multipliers(config.model))
    return dataclasses.replace(config, train=train)


def run_pretrain(config: Config, fasta: str | Path, out_dir: str | Path, intervals: str | Path | None = None,
                 resume: bool = False, callbacks: list | None = None, progress: bool = True) -> dict | None:
    """Train, select on validation, write the outputs. Returns the metrics on global rank 0, else None."""
    config = with_lr_multipliers(config)
    out = Path(out_dir)
    ckpt_dir = out / "checkpoints"
    last = ckpt_dir / "last.ckpt"
    tc = config.train
    source = open_source(fasta, config.data)
    splits = make_splits(source, config.data, intervals)
    if not splits["valid"]:
        raise ConfigError("the valid split is empty: validation (and model selection) needs held-out data")
    start_windows, ckpt_path = 0, None
    if resume:
        ckpt = load_for_resume(last, config.to_dict())
        start_windows = int(ckpt.get("hnet_genomics", {}).get("windows_consumed", 0))
        ckpt_path = str(last)
    elif last.exists():
        raise CheckpointError(f"{out}: already holds checkpoints; pass --resume to continue or choose another --out")

    dispatch.set_backend(tc.kernels)
    L.seed_everything(tc.seed, workers=True, verbose=False)
    task = LMTask(config)
    params = task.model.num_parameters()
    warn_if_memory_tight(config, params)
    data = GenomeDataModule(config, source, splits, start_windows)
    periodic = ModelCheckpoint(dirpath=ckpt_dir, filename="last", every_n_train_steps=tc.checkpoint_every,
                               save_top_k=1, enable_version_counter=False)
    best = ModelCheckpoint(dirpath=ckpt_dir, filename="best", monitor="val_bpb", mode="min", save_top_k=1,
                           enable_version_counter=False)
    trainer = L.Trainer(
        accelerator=tc.accelerator, devices=tc.devices, num_nodes=tc.num_nodes, strategy=_strategy(tc.strategy),
        precision=_precision(config), max_steps=tc.max_steps, gradient_clip_val=tc.grad_clip or None,
        accumulate_grad_batches=tc.accumulate_grad_batches,
        val_check_interval=tc.val_every * tc.accumulate_grad_batches, check_val_every_n_epoch=None,
        num_sanity_val_steps=0, log_every_n_steps=tc.log_every, use_distributed_sampler=False,
        logger=CSVLogger(out, name="logs", version=""), callbacks=[periodic, best, *(callbacks or [])],
        plugins=[AtomicCheckpointIO()], enable_progress_bar=progress, enable_model_summary=False,
        default_root_dir=out)
    out.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*resuming from a checkpoint that ended before the epoch.*")
        trainer.fit(task, datamodule=data, ckpt_path=ckpt_path)
    trainer.save_checkpoint(last)  # the final state, also when max_steps is not a multiple of checkpoint_every
    if not trainer.is_global_zero:
        return None
    return _finish(config, task, trainer, source, splits, best.best_model_path, out, params)


def _finish(config, task, trainer, source, splits, best_path, out: Path, params: int) -> dict:
    model = task.model
    selected_step = int(task.global_step)
    if best_path and Path(best_path).is_file():
        state = torch.load(best_path, map_location="cpu", weights_only=False)
        task.load_state_dict(state["state_dict"])
        selected_step = int(state.get("global_step", selected_step))
    model = model.cpu().float()
    model.trained_context = config.train.seq_len
    model.save_pretrained(out / "model")
    save_config(config, out / "config.yaml")
    tc = config.train
    final = evaluate_bpb(model, source, splits["valid"], tc.seq_len, config.data, batch_size=batch_size_for(config),
                         max_windows=tc.final_val_windows)
    logged = trainer.callback_metrics
    metrics = {
        "config": config.name, "params": params, "seq_len": tc.seq_len, "steps": int(task.global_step),
        "selected_step": selected_step,
        "val_bpb": final["bpb"], "val_bases_scored": final["bases_scored"],
        "compression_ratios": final["compression_ratios"],
        "target_compression": list(config.model.target_compression),
        "bases_seen": int(task.bases_seen),
        "bases_per_second": float(logged.get("bases_per_second", float("nan"))),
        "flops_per_base": task.model.flops_per_base(tc.seq_len, final["compression_ratios"] or None),
        "device": _device_name(trainer), "world_size": trainer.world_size,
        "history": task.history,
    }
    write_json_atomic(metrics, out / "metrics.json")
    plot_curves(out / "logs" / "metrics.csv", task.history, out / "curves.png", config.name)
    return metrics


def _device_name(trainer) -> str:
    if trainer.strategy.root_device.type == "cuda":
        return torch.cuda.get_device_name(trainer.strategy.root_device)
    return f"{os.cpu_count()}-core CPU"
