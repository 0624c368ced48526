"""Killed mid-run: SIGTERM (a scheduler's time limit, `timeout`) and SIGKILL for `pretrain` and `boundaries`.

SIGTERM: exit status 143 promptly, one line on stderr, no temporary or partial file, the user's files intact, and
for pretrain a `last.ckpt` at the step it stopped so --resume continues. SIGKILL allows no clean-up: the next
run into the same place removes what the killed one left and finishes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hnet_genomics import build_model, load_config
from hnet_genomics.data import demo

pytestmark = pytest.mark.slow  # real processes, real signals: about a minute in all

CHROM = "BA000025.2"
TRAIN = [
    "--config",
    "dna/hnet_1stage_tiny",
    "--fasta",
    str(demo.HUMAN_FASTA),
    "--seq-len",
    "128",
    "--batch-size",
    "2",
    "--set",
    "train.val_windows=2",
    "--set",
    "train.final_val_windows=2",
    "--set",
    "train.warmup_steps=2",
    "--set",
    "model.ssm.chunk_size=32",
    "--set",
    "train.checkpoint_every=2",
    "--set",
    "train.val_every=1000",
    "--threads",
    "1",
    "--quiet",
]


def start(*argv: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "hnet_genomics.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_for(predicate, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"finished before the signal: {proc.communicate()}")
        if time.time() > deadline:
            proc.kill()
            raise AssertionError("the run never reached the point to interrupt")
        time.sleep(0.02)


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".tmp-" in p.name or ".old-" in p.name]


def step_of(ckpt: Path) -> int:
    return int(torch.load(ckpt, map_location="cpu", weights_only=True)["global_step"])


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_pretrain_killed_mid_run_resumes_and_leaves_nothing_half_written(tmp_path, sig):
    out = tmp_path / "run"
    (tmp_path / "mine.txt").write_text("the user's\n")
    proc = start("pretrain", *TRAIN, "--out", str(out), "--max-steps", "100000")
    last = out / "checkpoints" / "last.ckpt"
    wait_for(last.exists, proc)
    time.sleep(0.3)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    if sig == signal.SIGTERM:
        assert proc.returncode == 143
        lines = err.strip().splitlines()  # --quiet: Lightning's own "Received SIGTERM" stays out too
        assert len(lines) == 1 and "terminated by SIGTERM: stopped at step" in lines[0], err
        assert lines[0].endswith("continue with --resume")
        stopped = int(lines[0].split("stopped at step ")[1].split(";")[0])
        assert step_of(last) == stopped  # the state at the step it stopped, not the previous periodic save
        assert leftovers(out) == []
    else:
        assert proc.returncode == -signal.SIGKILL
        stopped = step_of(last)
    assert not (out / "metrics.json").exists() and not (out / "model").exists()
    resumed = start("pretrain", *TRAIN, "--out", str(out), "--max-steps", str(stopped + 2), "--resume")
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err
    assert json.loads((out / "metrics.json").read_text())["steps"] == stopped + 2
    assert leftovers(out) == [] and (tmp_path / "mine.txt").read_text() == "the user's\n"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "hnet"
    torch.manual_seed(0)
    build_model(load_config("dna/hnet_1stage_tiny")).save_pretrained(path)
    return path


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_boundaries_killed_mid_run_leaves_no_temporaries_after_the_next_run(tmp_path, model_dir, sig):
    tracks = tmp_path / "tracks"
    tracks.mkdir()
    (tracks / "notes.txt").write_text("the user's\n")
    # the whole 2.2 Mb region: about a minute and a half on one thread, so the signal lands mid-export
    proc = start(
        "boundaries",
        "--model",
        str(model_dir),
        "--fasta",
        str(demo.HUMAN_FASTA),
        "--out",
        str(tracks / "hla"),
        "--threads",
        "1",
        "--quiet",
    )
    wait_for(lambda: len(leftovers(tracks)) >= 2, proc)  # the chunk BED and bedGraph are being written
    time.sleep(1.0)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    if sig == signal.SIGTERM:
        assert proc.returncode == 143 and err.strip() == "hnet-genomics: terminated by SIGTERM", err
        assert sorted(p.name for p in tracks.iterdir()) == ["notes.txt"]  # no temporary, no partial track
    else:
        assert proc.returncode == -signal.SIGKILL
        assert leftovers(tracks)  # SIGKILL gives no chance to clean up ...
    (tmp_path / "r.bed").write_text(f"{CHROM}\t10000\t12000\n")
    again = start(
        "boundaries",
        "--model",
        str(model_dir),
        "--fasta",
        str(demo.HUMAN_FASTA),
        "--regions",
        str(tmp_path / "r.bed"),
        "--out",
        str(tracks / "hla"),
        "--formats",
        "bed",
        "--quiet",
    )
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert leftovers(tracks) == []  # ... so the next run at that prefix removes what the killed one left
    assert sorted(p.name for p in tracks.iterdir()) == [
        "hla.chrom.sizes",
        "hla.stage1.bed",
        "hla.tracks.json",
        "notes.txt",
    ]
    assert (tracks / "notes.txt").read_text() == "the user's\n"
