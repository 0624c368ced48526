"""Pretraining runs end to end on real DNA: resume == uninterrupted, atomic checkpoints, clear errors."""

import json
import os
import signal
import subprocess
import sys
import time

import lightning as L
import pytest
import torch
from helpers import tiny_config

from hnet_genomics import from_pretrained
from hnet_genomics.data import demo
from hnet_genomics.errors import CheckpointError, DataError
from hnet_genomics.training.optim import lr_factor
from hnet_genomics.training.pretrain import run_pretrain

tiny = tiny_config


class LossRecorder(L.Callback):
    def __init__(self, stop_at: int | None = None):
        self.losses, self.stop_at = [], stop_at

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.losses.append(float(outputs["loss"]))
        if self.stop_at is not None and trainer.global_step >= self.stop_at:
            trainer.should_stop = True


def test_resume_continues_the_same_loss_curve(tmp_path):
    full = LossRecorder()
    run_pretrain(tiny(8), demo.HUMAN_FASTA, tmp_path / "full", callbacks=[full], progress=False)
    first = LossRecorder(stop_at=4)
    run_pretrain(tiny(8), demo.HUMAN_FASTA, tmp_path / "split", callbacks=[first], progress=False)
    second = LossRecorder()
    metrics = run_pretrain(
        tiny(8), demo.HUMAN_FASTA, tmp_path / "split", resume=True, callbacks=[second], progress=False
    )
    assert len(first.losses) == 4 and len(second.losses) == 4
    torch.testing.assert_close(torch.tensor(first.losses + second.losses), torch.tensor(full.losses), rtol=0, atol=1e-5)
    assert metrics["steps"] == 8 and metrics["bases_seen"] == 8 * 2 * 128


def test_pretrain_writes_model_metrics_and_plot(tmp_path):
    metrics = run_pretrain(tiny(6, ["train.val_every=3"]), demo.HUMAN_FASTA, tmp_path, progress=False)
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("val_bpb", "compression_ratios", "bases_seen", "bases_per_second", "params", "history"):
        assert key in on_disk
    # speed without and with the warm-up steps; the split the memory check let train
    assert on_disk["bases_per_second"] > 0 and on_disk["bases_per_second_with_warmup"] > 0
    assert on_disk["warmup_steps"] == 2 and on_disk["warmup_seconds"] > 0
    assert (on_disk["micro_batch"], on_disk["accumulate_grad_batches"]) == (2, 1)
    assert on_disk["memory_check"]["per_window_bytes"] > 0
    assert on_disk == json.loads(json.dumps(metrics))
    assert [h["step"] for h in metrics["history"]] == [3, 6]
    assert len(metrics["compression_ratios"]) == 1 and metrics["compression_ratios"][0] > 1
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    model = from_pretrained(tmp_path / "model")
    assert model.num_parameters() == metrics["params"]
    assert model.trained_context == metrics["seq_len"]  # export and fine-tuning default to it
    assert model.data_encoding == {"kind": "dna", "soft_mask": "upper", "n_policy": "mask"}  # read alike at inference
    assert {p.name for p in (tmp_path / "checkpoints").iterdir()} == {"last.ckpt", "best.ckpt"}


def test_resume_refuses_corrupt_or_mismatched_checkpoint_and_overwrites_nothing(tmp_path):
    run_pretrain(tiny(2), demo.HUMAN_FASTA, tmp_path, progress=False)
    last = tmp_path / "checkpoints" / "last.ckpt"
    good = last.read_bytes()
    with pytest.raises(CheckpointError, match="different model config.*d_model"):
        run_pretrain(tiny(4, ["model.d_model=[64, 128]"]), demo.HUMAN_FASTA, tmp_path, resume=True, progress=False)
    last.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="corrupt or unreadable"):
        run_pretrain(tiny(4), demo.HUMAN_FASTA, tmp_path, resume=True, progress=False)
    assert last.read_bytes() == good[: len(good) // 2]
    with pytest.raises(CheckpointError, match="already holds checkpoints"):
        run_pretrain(tiny(4), demo.HUMAN_FASTA, tmp_path, progress=False)


class LrRecorder(L.Callback):
    def __init__(self):
        self.lrs = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.lrs.append({g["stage"]: g["lr"] for g in trainer.optimizers[0].param_groups})


def test_resume_trains_at_changed_stage_multipliers_and_accepts_older_checkpoints(tmp_path):
    first = LossRecorder(stop_at=4)
    run_pretrain(
        tiny(8, ["train.lr_multipliers=[1.5, 1.0]"]), demo.HUMAN_FASTA, tmp_path, callbacks=[first], progress=False
    )
    last = tmp_path / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, map_location="cpu", weights_only=False)
    assert ckpt["hyper_parameters"]["config"]["train"]["lr_multipliers"] == [1.5, 1.0]
    ckpt["hyper_parameters"]["config"]["model"] |= {"lr_multipliers": [1.5, 1.0], "ratio_loss_weight": 0.03}
    torch.save(ckpt, last)  # as older versions wrote it: training settings inside the model section
    resumed = LrRecorder()
    cfg = tiny(8, ["train.lr_multipliers=[3.0, 0.5]"])
    run_pretrain(cfg, demo.HUMAN_FASTA, tmp_path, resume=True, callbacks=[resumed], progress=False)
    assert len(resumed.lrs) == 4
    for step, lrs in zip(range(4, 8), resumed.lrs):
        factor = lr_factor(step, cfg.train)
        assert lrs == pytest.approx({0: cfg.train.lr * 3.0 * factor, 1: cfg.train.lr * 0.5 * factor})


def test_window_longer_than_every_interval_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="longer than every interval"):
        run_pretrain(tiny(2, ["train.seq_len=3000000"]), demo.HUMAN_FASTA, tmp_path, progress=False)


_WRITER = """
import sys, torch
from hnet_genomics.training.checkpoint import AtomicCheckpointIO
io = AtomicCheckpointIO()
io.save_checkpoint({"tag": "old", "x": torch.zeros(4)}, sys.argv[1])
print("first-done", flush=True)
io.save_checkpoint({"tag": "new", "x": torch.randn(150_000_000)}, sys.argv[1])  # ~600 MB: slow to write
print("second-done", flush=True)
"""


def test_kill_9_while_writing_a_checkpoint_leaves_the_previous_one_loadable(tmp_path):
    target = tmp_path / "last.ckpt"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "first-done"
    deadline = time.time() + 60
    while not list(tmp_path.glob(".last.ckpt.tmp-*")) and time.time() < deadline:
        time.sleep(0.005)
    assert list(tmp_path.glob(".last.ckpt.tmp-*")), "the second write never started"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    ckpt = torch.load(target, weights_only=False)
    assert ckpt["tag"] == "old"


def test_cli_pretrain_and_eval_exit_codes(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "hnet_genomics.cli",
            "pretrain",
            "--config",
            "dna/nope",
            "--fasta",
            str(demo.HUMAN_FASTA),
            "--out",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert bad.returncode == 2 and "no shipped config named 'dna/nope'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "hnet_genomics.cli",
            "pretrain",
            "--config",
            "dna/hnet_1stage_tiny",
            "--fasta",
            str(tmp_path / "none.fa"),
            "--out",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert missing.returncode == 2 and "none.fa" in missing.stderr
    unknown = subprocess.run(
        [
            sys.executable,
            "-m",
            "hnet_genomics.cli",
            "pretrain",
            "--config",
            "dna/hnet_1stage_tiny",
            "--fasta",
            str(demo.HUMAN_FASTA),
            "--out",
            str(tmp_path / "x"),
            "--set",
            "train.learning_rate=1",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert unknown.returncode == 2 and "unknown config key 'train.learning_rate'" in unknown.stderr
    assert not (tmp_path / "x").exists()


def test_fewer_validation_windows_than_processes_is_refused(tmp_path):
    """A rank without validation batches would skip the epoch-end reduction the other ranks wait in."""
    from types import SimpleNamespace

    from hnet_genomics.data.intervals import Interval
    from hnet_genomics.training.datamodule import GenomeDataModule
    from hnet_genomics.training.sources import open_source

    config = tiny(2)
    source = open_source(demo.HUMAN_FASTA, config.data)
    chrom = next(iter(source.sizes))
    splits = {"train": [Interval(chrom, 0, 10_000)], "valid": [Interval(chrom, 10_000, 10_300)]}
    data = GenomeDataModule(config, source, splits)
    data.trainer = SimpleNamespace(global_rank=0, world_size=4)
    with pytest.raises(DataError, match="valid split holds 3 window.*fewer than the 4 training processes"):
        data.val_dataloader()
    data.trainer = SimpleNamespace(global_rank=1, world_size=2)
    assert len(data.val_dataloader().dataset) == 1


def test_final_evaluation_runs_on_the_trainers_device_and_precision_after_saving(tmp_path, monkeypatch):
    """The full-valid-split score after training must not fall back to fp32 on the CPU (hours after an hg38 GPU
    run, and a crash under ``kernels: gpu``): it runs where and how training ran, after the model is saved."""
    from hnet_genomics.training import pretrain

    seen = {}
    real = pretrain.evaluate_bpb

    def spy(model, *args, device="cpu", precision="fp32", **kwargs):
        seen.update(
            device=torch.device(device),
            precision=precision,
            saved=(tmp_path / "model").is_dir(),
            on=next(model.parameters()).device,
        )
        return real(model, *args, device=device, precision=precision, **kwargs)

    monkeypatch.setattr(pretrain, "evaluate_bpb", spy)
    metrics = run_pretrain(tiny(2, ["train.precision=bf16-mixed"]), demo.HUMAN_FASTA, tmp_path, progress=False)
    assert seen["precision"] == "bf16" and seen["saved"] and seen["device"] == seen["on"]
    assert metrics["precision"] == "bf16-mixed" and set(metrics["kernels"].values()) == {"torch"}
    reloaded = from_pretrained(tmp_path / "model")
    assert next(reloaded.parameters()).dtype == torch.float32


def test_curve_axis_shows_a_run_that_stays_above_2_6_bits():
    from hnet_genomics.training.curves import bpb_axis_top

    early_spike = [(s, 8.0 if s < 5 else 2.0) for s in range(100)]
    assert bpb_axis_top(early_spike, [{"step": 50, "val_bpb": 1.95}]) == 2.6  # the first steps are cut off
    stuck = [(s, 3.4 - s / 1000) for s in range(100)]
    top = bpb_axis_top(stuck, [{"step": 50, "val_bpb": 3.5}, {"step": 99, "val_bpb": 3.3}])
    assert top >= 3.5 + 0.05  # the whole run stays in view
