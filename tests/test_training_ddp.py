"""Distributed data parallel through Lightning, 2 CPU processes over gloo."""

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_ddp_ranks_see_different_data_and_end_with_equal_weights(tmp_path):
    worker = Path(__file__).with_name("ddp_worker.py")
    run = subprocess.run([sys.executable, str(worker), str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    r0 = json.loads((tmp_path / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "rank1.json").read_text())
    assert r0["world_size"] == r1["world_size"] == 2
    assert len(r0["batches"]) == len(r1["batches"]) == 3
    for b0, b1 in zip(r0["batches"], r1["batches"]):
        assert b0 != b1  # each rank draws its own windows
    assert r0["weights_sum"] == pytest.approx(r1["weights_sum"], rel=1e-6, abs=1e-6)
    assert r0["weights_abs"] == pytest.approx(r1["weights_abs"], rel=1e-6)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["bases_seen"] == 3 * 2 * 64 * 2


@pytest.mark.slow
def test_ddp_ranks_train_the_micro_batch_the_tightest_rank_can_hold(tmp_path):
    """Rank 1's memory holds one window of the two each rank's micro-batch has: both ranks train one window at
    a time, two accumulated, so the optimizer steps (and the weights) stay the same on both."""
    worker = Path(__file__).with_name("ddp_worker.py")
    run = subprocess.run(
        [sys.executable, str(worker), str(tmp_path), "tight-rank1"], capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for r in ranks:
        assert r["accumulate_grad_batches"] == 2 and len(r["batches"]) == 6
        assert all(len(b) == 1 for b in r["batches"])
    assert ranks[0]["batches"] != ranks[1]["batches"]
    assert ranks[0]["weights_sum"] == pytest.approx(ranks[1]["weights_sum"], rel=1e-6, abs=1e-6)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert (metrics["micro_batch"], metrics["accumulate_grad_batches"], metrics["steps"]) == (1, 2, 3)
    assert metrics["bases_seen"] == 3 * 2 * 64 * 2
