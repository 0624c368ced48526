"""Pretraining never starts a step its own measurement says will not fit: it trains the largest micro-batch that
does, on the same windows per optimizer step, also across a resume that changes the split."""

import logging
from collections import defaultdict

import lightning as L
import pytest
import torch
from helpers import tiny_config

from hnet_genomics import build_model
from hnet_genomics.cli import main as cli_main
from hnet_genomics.data import demo
from hnet_genomics.errors import ConfigError
from hnet_genomics.training import microbatch
from hnet_genomics.training.microbatch import rescale_batch_progress
from hnet_genomics.training.pretrain import run_pretrain
from hnet_genomics.training.resources import MEMORY_MARGIN, measure_training_memory


class WindowsPerStep(L.Callback):
    """The windows each optimizer step trained on (padded rows, or the sequences of a packed row)."""

    def __init__(self, stop_at: int | None = None):
        self.steps: dict[int, list[tuple]] = defaultdict(list)
        self.micro_batches: list[int] = []
        self.stop_at = stop_at

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        ids = batch["input_ids"]
        if "cu_seqlens" in batch:
            cu = batch["cu_seqlens"].tolist()
            windows = [tuple(ids[0, a:b].tolist()) for a, b in zip(cu, cu[1:])]
        else:
            windows = [tuple(row) for row in ids.tolist()]
        self.steps[trainer.global_step] += windows
        self.micro_batches.append(len(windows))

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if self.stop_at is not None and trainer.global_step >= self.stop_at:
            trainer.should_stop = True


def free_memory_for(config, windows: float) -> int:
    """Free bytes with which the memory check's budget holds ``windows`` windows (a fraction rounds down)."""
    model = build_model(config.model)
    estimate = measure_training_memory(model, config.train.seq_len, "fp32", seed=config.train.seed)
    return int((estimate.step_bytes(0) + windows * estimate.per_window) / MEMORY_MARGIN)


def with_free_memory(monkeypatch, free: int | None) -> None:
    monkeypatch.setattr(microbatch, "available_bytes", lambda device: free)


LAYOUTS = {
    "padded": ["train.batch_size=4"],
    "packed": ["train.layout=packed", "train.tokens_per_batch=512"],  # 4 windows of 128 bases in one row
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_micro_batch_that_does_not_fit_is_split_and_each_optimizer_step_sees_the_same_windows(
    tmp_path, monkeypatch, layout
):
    config = tiny_config(3, LAYOUTS[layout])
    reference = WindowsPerStep()
    with_free_memory(monkeypatch, None)  # unknown free memory: the configured split
    full = run_pretrain(config, demo.HUMAN_FASTA, tmp_path / "full", callbacks=[reference], progress=False)
    assert (full["micro_batch"], full["accumulate_grad_batches"]) == (4, 1)

    with_free_memory(monkeypatch, free_memory_for(config, 3.5))
    split = WindowsPerStep()
    metrics = run_pretrain(config, demo.HUMAN_FASTA, tmp_path / "split", callbacks=[split], progress=False)
    assert (metrics["micro_batch"], metrics["accumulate_grad_batches"]) == (2, 2)
    assert metrics["memory_check"]["configured"] == [4, 1]
    assert split.micro_batches == [2] * 6
    assert dict(split.steps) == dict(reference.steps)
    assert metrics["steps"] == full["steps"] == 3 and metrics["bases_seen"] == full["bases_seen"]
    saved = (tmp_path / "split" / "config.yaml").read_text()  # the config records the split that trained
    assert "accumulate_grad_batches: 2" in saved and "batch_size: 2" in saved


def test_resume_with_another_split_continues_the_same_optimizer_steps(tmp_path, monkeypatch):
    config = tiny_config(4, ["train.batch_size=4", "train.val_every=2", "train.checkpoint_every=2"])
    with_free_memory(monkeypatch, None)
    reference = WindowsPerStep()
    full = run_pretrain(config, demo.HUMAN_FASTA, tmp_path / "full", callbacks=[reference], progress=False)

    first = WindowsPerStep(stop_at=2)
    run_pretrain(config, demo.HUMAN_FASTA, tmp_path / "resumed", callbacks=[first], progress=False)
    with_free_memory(monkeypatch, free_memory_for(config, 1.5))  # the resumed run gets one window at a time
    second = WindowsPerStep()
    metrics = run_pretrain(
        config, demo.HUMAN_FASTA, tmp_path / "resumed", resume=True, callbacks=[second], progress=False
    )
    assert (metrics["micro_batch"], metrics["accumulate_grad_batches"]) == (1, 4)
    assert second.micro_batches == [1] * 8
    assert {**first.steps, **second.steps} == dict(reference.steps)
    assert [h["step"] for h in metrics["history"]] == [h["step"] for h in full["history"]] == [2, 4]
    assert metrics["steps"] == 4 and metrics["bases_seen"] == full["bases_seen"]


def test_loop_counts_convert_between_splits():
    loops = {
        "fit_loop": {
            "epoch_loop.batch_progress": {
                "total": {"ready": 12, "started": 12, "processed": 12, "completed": 11},  # saved mid-hook
                "current": {"ready": 13, "started": 13, "processed": 13, "completed": 13},  # a partial step
            }
        }
    }
    rescale_batch_progress(loops, 4, 2)
    progress = loops["fit_loop"]["epoch_loop.batch_progress"]
    assert progress["total"] == {"ready": 6, "started": 6, "processed": 6, "completed": 5}
    assert progress["current"] == {"ready": 6, "started": 6, "processed": 6, "completed": 6}
    rescale_batch_progress(loops, 2, 8)
    assert progress["total"] == {"ready": 24, "started": 24, "processed": 24, "completed": 23}


def test_a_run_where_not_one_window_fits_stops_before_training_with_one_line(tmp_path, monkeypatch, capsys):
    config = tiny_config(2)
    with_free_memory(monkeypatch, free_memory_for(config, 0.5))
    with pytest.raises(ConfigError, match="does not fit even with one window per micro-batch"):
        run_pretrain(config, demo.HUMAN_FASTA, tmp_path / "api", progress=False)
    assert not (tmp_path / "api" / "checkpoints").exists()
    capsys.readouterr()
    args = ["pretrain", "--config", "dna/hnet_1stage_tiny", "--fasta", str(demo.HUMAN_FASTA), "--quiet"]
    for item in ["train.seq_len=128", "train.batch_size=2", "model.ssm.chunk_size=32"]:
        args += ["--set", item]
    code = cli_main([*args, "--out", str(tmp_path / "cli")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "does not fit even with one window" in err[0]


def test_every_process_trains_the_split_of_the_tightest(monkeypatch):
    """Each process plans with the smallest budget any process has (a reduction the strategy performs)."""
    from types import SimpleNamespace

    config = tiny_config(2, ["train.batch_size=4"])
    model = build_model(config.model)
    budgets = {"mine": free_memory_for(config, 10), "smallest": free_memory_for(config, 2.5)}
    with_free_memory(monkeypatch, budgets["mine"])
    seen = []

    def reduce(tensor, reduce_op):
        seen.append((float(tensor), reduce_op))
        return torch.tensor(float(int(MEMORY_MARGIN * budgets["smallest"])))

    data = SimpleNamespace(config=config)
    trainer = SimpleNamespace(
        strategy=SimpleNamespace(root_device=torch.device("cpu"), reduce=reduce),
        world_size=2,
        precision="32-true",
        datamodule=data,
        is_global_zero=True,
        accumulate_grad_batches=1,
        val_check_interval=config.train.val_every,
    )
    task = SimpleNamespace(model=model, config=config, hparams={})
    fit = microbatch.FitMicroBatch(config)
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("hnet_genomics.training")
    logger.addHandler(handler)
    try:
        fit.setup(trainer, task, "fit")
    finally:
        logger.removeHandler(handler)
    (message,) = [r.getMessage() for r in records]
    assert "\n" not in message and message.startswith("memory: 4 x 128 bases per micro-batch would keep")
    assert "training 2 windows per micro-batch x 2 accumulated instead of 4 x 1" in message
    assert "(512 bases per optimizer step, unchanged)" in message
    assert seen == [(float(int(MEMORY_MARGIN * budgets["mine"])), "min")]
    assert (trainer.accumulate_grad_batches, data.config.train.batch_size) == (2, 2)
    assert task.config is data.config is fit.config and trainer.val_check_interval == 2 * config.train.val_every
