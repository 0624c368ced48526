"""`compare` and `report` over text runs: two tiny byte-level runs trained here, read in bytes and bits per byte,
and a comparison of a text run with a DNA run refused."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
from helpers import FAST

from hnet_genomics.cli import main
from hnet_genomics.errors import DataError
from hnet_genomics.reporting.compare import compare_runs
from hnet_genomics.reporting.report import bpb_figure

ROOT = Path(__file__).resolve().parents[1]
STEPS = 4


@pytest.fixture(scope="module")
def text_runs(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    """Two byte-level runs on this project's own documentation (an H-Net and a Mamba-2 baseline), validated
    every other step, and the H-Net's test-split evaluation."""
    root = tmp_path_factory.mktemp("text")
    corpus = root / "corpus"
    corpus.mkdir()
    for name in ("README.md", "ARCHITECTURE.md"):
        (corpus / name).write_bytes((ROOT / name).read_bytes())
    runs = {}
    for name, base in (("hnet", "dna/hnet_1stage_tiny"), ("mamba2", "dna/mamba2_tiny")):
        (root / f"{name}.yaml").write_text(f"base: {base}\ndata:\n  kind: text\n  rc_prob: 0.0\n")
        settings = [s for s in FAST if s != "data.rc_prob=0.5"] + [
            f"train.max_steps={STEPS}",
            "train.val_every=2",
            "train.log_every=1",
        ]
        argv = ["pretrain", "--config", str(root / f"{name}.yaml"), "--text", str(corpus), "--out", str(root / name)]
        assert main([*argv, *[x for s in settings for x in ("--set", s)], "--quiet"]) == 0
        runs[name] = root / name
    test = ["eval", "--model", str(runs["hnet"]), "--text", str(corpus), "--out", str(root / "hnet.test.json")]
    assert main([*test, "--quiet"]) == 0
    return root, runs


def test_compare_of_text_runs_speaks_of_bytes_and_bits_per_byte(text_runs):
    root, runs = text_runs
    metrics = {name: json.loads((d / "metrics.json").read_text()) for name, d in runs.items()}
    assert all(m["unit"] == "byte" and len(m["history"]) == STEPS // 2 for m in metrics.values())
    argv = ["compare", "--runs", *(f"{n}={d}" for n, d in runs.items()), "--reference", "hnet"]
    assert main([*argv, "--test", f"hnet={root / 'hnet.test.json'}", "--out", str(root / "cmp")]) == 0
    md = (root / "cmp" / "comparison.md").read_text()
    assert "validation bits per byte" in md and "## Data efficiency of hnet" in md
    assert "| run | seeds | params | train FLOPs/byte | bytes seen | val bpb | test bpb | compression | bytes/s |" in md
    test_bpb = json.loads((root / "hnet.test.json").read_text())["bpb"]
    hnet = metrics["hnet"]
    assert f"| hnet | 1 | {hnet['params']:,} |" in md and f"| {hnet['val_bpb']:.4f} | {test_bpb:.4f} |" in md
    assert "| hnet bytes to match |" in md and "its bytes" in md and "base" not in md
    rows = list(csv.DictReader((root / "cmp" / "comparison.csv").open()))
    assert {r["run"] for r in rows} == {"hnet", "mamba2"} and "base" not in ",".join(rows[0])
    by_run = {r["run"]: r for r in rows}
    assert int(by_run["mamba2"]["bytes_seen"]) == metrics["mamba2"]["bytes_seen"] == STEPS * 2 * 128
    assert float(by_run["hnet"]["flops_per_byte"]) == hnet["flops_per_byte"]
    summary = json.loads((root / "cmp" / "comparison.json").read_text())
    assert summary["unit"] == "byte" and "reference_bytes_to_match" in summary["runs"]["mamba2"]
    curve = summary["runs"]["hnet"]["curve"]
    assert [x for x, _ in curve] == [row["bytes_seen"] for row in hnet["history"]]  # the final one is the last
    assert (root / "cmp" / "val_bpb.png").stat().st_size > 1000
    fig = bpb_figure({"hnet": curve}, {"uniform": 8.0}, "t", unit="byte")  # what val_bpb.png draws
    assert fig.axes[0].get_xlabel() == "bytes seen in training"
    assert fig.axes[0].get_ylabel() == "validation bits per byte"


def test_report_of_a_text_run_and_its_evaluation_speaks_of_bytes(text_runs):
    root, runs = text_runs
    out = root / "report" / "report.md"
    argv = ["report", "--pretrain", str(runs["hnet"]), "--eval", str(root / "hnet.test.json"), "--out", str(out)]
    assert main(argv) == 0
    text = out.read_text()
    result = json.loads((root / "hnet.test.json").read_text())
    metrics = json.loads((runs["hnet"] / "metrics.json").read_text())
    assert "## Bits per byte" in text and "| model | split | bpb | bytes scored |" in text
    assert f"| test | {result['bpb']:.4f} | {result['bytes']:,} |" in text
    assert "| uniform over 256 byte values | any | 8.0000 | – |" in text
    assert f"| bytes seen | {metrics['bytes_seen']:,} |" in text and "| FLOPs per byte |" in text
    assert "base" not in text and (out.parent / "val_bpb.png").is_file()


def test_a_text_run_beside_a_dna_run_is_refused_naming_both(text_runs, tmp_path):
    _, runs = text_runs
    dna = tmp_path / "dna"
    dna.mkdir()
    history = [{"step": 1, "bases_seen": 256, "val_bpb": 1.99}]
    (dna / "metrics.json").write_text(json.dumps({"val_bpb": 1.98, "bases_seen": 512, "history": history}))
    names = rf"--runs: hnet={re.escape(str(runs['hnet']))} counts bits per byte but dna={re.escape(str(dna))} counts"
    with pytest.raises(DataError, match=names):
        compare_runs({"hnet": [runs["hnet"]], "dna": [dna]}, tmp_path / "cmp")
    assert not (tmp_path / "cmp").exists()
