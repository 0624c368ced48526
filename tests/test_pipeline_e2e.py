"""A real `snakemake pretrain_hg38` on the embedded human region with a tiny budget."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROM = "BA000025.2"
REGION = (2_100_000, 2_120_000)  # 20 kb inside the held-out test split

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("hnet-genomics") is None, reason="package not installed"),
]


def snakemake(workdir: Path, *config: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "pretrain_hg38",
            "--cores",
            "2",
            "-s",
            str(REPO / "Snakefile"),
            "--directory",
            str(workdir),
            "--show-failed-logs",
            "--config",
            "max_steps=10",
            "seq_len=256",
            "batch_size=4",
            "pretrain_set=[train.warmup_steps=2,train.val_every=5]",
            *config,
        ],
        capture_output=True,
        text=True,
        timeout=1500,
    )


def test_pretrain_hg38_survives_a_failed_job_and_finishes_on_rerun(tmp_path):
    bad = tmp_path / "bad_regions.bed"
    bad.write_text("chrNotInGenome\t0\t1000\n")
    failed = snakemake(tmp_path, f"regions={bad}")
    results = tmp_path / "results" / "demo"
    assert failed.returncode != 0
    assert (results / "pretrain" / "hnet_1stage" / "metrics.json").is_file()
    assert not (results / "tracks" / "hnet_1stage").exists()  # created by the job, removed with its failure

    regions = tmp_path / "regions.bed"
    regions.write_text(f"{CHROM}\t{REGION[0]}\t{REGION[1]}\n")
    done = snakemake(tmp_path, f"regions={regions}")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "rule pretrain:" not in done.stdout  # the finished run is reused

    metrics = json.loads((results / "pretrain/hnet_1stage/metrics.json").read_text())
    assert metrics["steps"] == 10 and metrics["history"] and 0 < metrics["val_bpb"] < 8
    assert (results / "pretrain/hnet_1stage/model/model.safetensors").is_file()
    evaluation = json.loads((results / "eval/hnet_1stage.test.json").read_text())
    assert evaluation["split"] == "test" and evaluation["bpb"] > 0
    markov = json.loads((results / "eval/markov/order10.test.json").read_text())
    assert markov["model"] == "markov-10" and 1.85 < markov["bpb"] < 1.93

    chunks = [
        line.split("\t")
        for line in (results / "tracks/hnet_1stage/hnet_1stage.stage1.bed").read_text().splitlines()
        if line and not line.startswith(("track", "#"))
    ]
    assert sum(int(c[2]) - int(c[1]) for c in chunks) == REGION[1] - REGION[0]  # chunks tile the region
    assert (results / "tracks/hnet_1stage/hnet_1stage.stage1.bw").is_file()
    assert (results / "enrichment/hnet_1stage/summary.json").is_file()
    report = (results / "report/report.md").read_text()
    assert f"| markov-10 | test | {markov['bpb']:.4f} |" in report
    assert "hnet_1stage.stage1.bw" in report and (results / "report/val_bpb.png").is_file()
