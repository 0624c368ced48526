"""`hnet-genomics report` / `compare`: the pages the workflow ends with, built from the runs' JSON files."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from hnet_genomics.cli import main
from hnet_genomics.config import DataConfig
from hnet_genomics.data.demo import HUMAN_EXONS_BED, HUMAN_FASTA
from hnet_genomics.errors import DataError
from hnet_genomics.reporting.compare import bases_to_reach, compare_runs
from hnet_genomics.reporting.report import write_report
from hnet_genomics.training.markov import markov_eval

TEST_REGION = ("BA000025.2", 2_006_835, 2_229_817)  # held-out tail of the embedded region


def fake_run(
    root: Path, name: str, val_bpb: float, flops: float | None = None, curve: list[float] | None = None
) -> Path:
    """A pretrain output directory as `hnet-genomics pretrain` lays it out (metrics.json + curves.png).

    ``curve``: validation bpb after 1, 2, 3, ... steps of 8,192 bases; the last value is the final one.
    """
    run = root / name
    run.mkdir(parents=True)
    if curve is None:
        history = [{"step": s, "bases_seen": s * 8192, "val_bpb": val_bpb + 0.4 / s} for s in (1, 2, 4, 8)]
        seen = 65_536
    else:
        history = [{"step": s, "bases_seen": s * 8192, "val_bpb": v} for s, v in enumerate(curve, 1)]
        seen, val_bpb = len(curve) * 8192, curve[-1]
    metrics = {
        "config": f"dna/{name}",
        "params": 512_345,
        "val_bpb": val_bpb,
        "compression_ratios": [2.9],
        "bases_seen": seen,
        "bases_per_second": 1234.5,
        "history": history,
    }
    if flops is not None:
        metrics["flops_per_base"] = flops
    (run / "metrics.json").write_text(json.dumps(metrics))
    (run / "curves.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    return run


@pytest.fixture(scope="module")
def markov_json(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("markov") / "markov.json"
    path.write_text(json.dumps(markov_eval(HUMAN_FASTA, None, DataConfig(), order=4)))
    return path


@pytest.fixture(scope="module")
def tracks_and_enrichment(tmp_path_factory) -> tuple[Path, Path]:
    """Fixed 40 bp chunks over the held-out region, scored against the region's real exons."""
    root = tmp_path_factory.mktemp("tracks")
    prefix = root / "demo"
    chrom, start, end = TEST_REGION
    lines = [
        f"{chrom}\t{s}\t{min(s + 40, end)}\tchunk\t0\t+\t{s}\t{min(s + 40, end)}\t0,0,0" for s in range(start, end, 40)
    ]
    (root / "demo.stage1.bed").write_text("\n".join(lines) + "\n")
    (root / "demo.stage1.bedGraph").write_text(f"{chrom}\t{start}\t{end}\t0.5\n")
    assert (
        main(
            [
                "enrichment",
                "--boundaries",
                str(root / "demo.stage1.bed"),
                "--annotation",
                str(HUMAN_EXONS_BED),
                "--out",
                str(root / "enrichment"),
                "--permutations",
                "50",
            ]
        )
        == 0
    )
    return prefix, root / "enrichment"


def test_report_puts_model_and_markov_bpb_side_by_side_with_every_figure(tmp_path, markov_json, tracks_and_enrichment):
    prefix, enrichment = tracks_and_enrichment
    run = fake_run(tmp_path, "hnet_1stage_tiny", val_bpb=1.97)
    evaluation = tmp_path / "eval.json"
    evaluation.write_text(json.dumps({"model": "hnet", "split": "test", "bpb": 1.9712, "bases": 222_764}))
    markov = json.loads(markov_json.read_text())
    out = tmp_path / "report" / "report.md"
    assert (
        main(
            [
                "report",
                "--out",
                str(out),
                "--pretrain",
                str(run),
                "--eval",
                str(evaluation),
                "--markov",
                str(markov_json),
                "--enrichment",
                str(enrichment),
                "--tracks",
                str(prefix),
            ]
        )
        == 0
    )
    text = out.read_text()
    assert "| dna/hnet_1stage_tiny | test | 1.9712 | 222,764 |" in text
    assert f"| markov-4 | test | {markov['bpb']:.4f} | {markov['bases']:,} |" in text
    verdict = "better" if markov["bpb"] > 1.9712 else "worse"
    assert f"the model is {abs(markov['bpb'] - 1.9712):.4f} bits per base {verdict} than the Markov" in text
    for image in ("curves.png", "val_bpb.png", "edge_density.png"):
        assert f"]({image})" in text and (out.parent / image).is_file()
    summary = json.loads((enrichment / "summary.json").read_text())
    assert f"| {summary['enrichment'][0]['flank']} | {summary['enrichment'][0]['n_boundaries']:,} |" in text
    for track in ("demo.stage1.bed", "demo.stage1.bedGraph"):
        assert f"- `{os.path.relpath(prefix.parent / track, out.parent)}`" in text
    assert "IGV" in text and "bigDataUrl=" in text


def test_report_without_optional_inputs_still_has_the_uniform_reference(tmp_path, markov_json):
    out = tmp_path / "only_markov.md"
    write_report(out, markov=markov_json)
    text = out.read_text()
    assert "| uniform over A/C/G/T | any | 2.0000 | – |" in text
    assert "## Training" not in text and "## Chunk-boundary tracks" not in text


def test_report_names_the_file_that_is_missing_or_broken(tmp_path, capsys):
    with pytest.raises(DataError, match="metrics.json: no such file"):
        write_report(tmp_path / "r.md", pretrain=tmp_path)
    broken = tmp_path / "eval.json"
    broken.write_text('{"bpb": 1.9,\n "bases": }')
    assert main(["report", "--out", str(tmp_path / "r.md"), "--eval", str(broken)]) == 2
    assert f"{broken}:2: not valid JSON" in capsys.readouterr().err
    assert not (tmp_path / "r.md").exists()


def test_compare_aggregates_seeds_sorts_by_mean_val_bpb_and_reports_test_bpb(tmp_path, markov_json):
    runs = {
        "transformer": [fake_run(tmp_path, "t0", 1.99), fake_run(tmp_path, "t1", 2.01)],
        "hnet_1stage": [fake_run(tmp_path, "h0", 1.93, flops=3.1e6), fake_run(tmp_path, "h1", 1.95, flops=3.1e6)],
        "mamba2": [fake_run(tmp_path, "m0", 1.95)],
    }
    tests = {}
    for name, value in (("hnet_1stage", 1.90), ("hnet_1stage", 1.92), ("mamba2", 1.96)):
        path = tmp_path / f"{name}.{len(tests.get(name, []))}.test.json"
        path.write_text(json.dumps({"split": "test", "bpb": value}))
        tests.setdefault(name, []).append(path)
    paths = compare_runs(runs, tmp_path / "compare", tests=tests, markov=markov_json)
    rows = list(csv.DictReader(paths["csv"].open()))
    assert [r["run"] for r in rows] == ["hnet_1stage", "hnet_1stage", "mamba2", "transformer", "transformer"]
    assert [r["test_bpb"] for r in rows] == ["1.9", "1.92", "1.96", "", ""]
    assert rows[0]["flops_per_base"] == "3100000.0" and rows[2]["flops_per_base"] == ""
    md = paths["md"].read_text()
    assert "| hnet_1stage | 2 | 512,345 | 3,100,000 | 65,536 | 1.9400 ± 0.0141 | 1.9100 ± 0.0141 |" in md
    assert "| mamba2 | 1 | 512,345 | – | 65,536 | 1.9500 | 1.9600 |" in md
    assert "Reference: markov-4 scores" in md and paths["png"].stat().st_size > 1000
    summary = json.loads(paths["json"].read_text())
    assert summary["runs"]["transformer"]["val_bpb"] == [1.99, 2.01]
    assert [s["test_bpb"] for s in summary["runs"]["hnet_1stage"]["per_seed"]] == [1.90, 1.92]
    assert [r["seed_dir"] for r in rows[:2]] == [str(d) for d in runs["hnet_1stage"]]


def test_data_efficiency_is_interpolated_on_the_reference_mean_curve(tmp_path):
    # seeds of the reference average to 2.4, 2.0, 1.8, 1.7; the baseline ends at 1.9 after 4 steps,
    # which the reference's mean curve crosses halfway between steps 2 and 3: 2.5 steps -> 4 / 2.5 = 1.6x.
    runs = {
        "hnet": [
            fake_run(tmp_path, "h0", 0, curve=[2.5, 2.1, 1.9, 1.8]),
            fake_run(tmp_path, "h1", 0, curve=[2.3, 1.9, 1.7, 1.6]),
        ],
        "mamba2": [fake_run(tmp_path, "m0", 0, curve=[2.6, 2.2, 2.0, 1.9])],
        "better": [fake_run(tmp_path, "b0", 0, curve=[2.0, 1.7, 1.6, 1.5])],
    }
    paths = compare_runs(runs, tmp_path / "cmp", reference="hnet")
    summary = json.loads(paths["json"].read_text())["runs"]
    assert summary["mamba2"]["reference_bases_to_match"] == pytest.approx(2.5 * 8192)
    assert summary["mamba2"]["data_efficiency"] == pytest.approx(1.6)
    assert summary["better"]["reference_bases_to_match"] is None  # hnet never reaches 1.5
    md = paths["md"].read_text()
    assert "| mamba2 | 1.0000 | – | 1.9000 | 32,768 | 20,480 | 1.60x |" in md
    assert "| better | 1.0000 | – | 1.5000 | 32,768 | not reached | – |" in md


def test_bases_to_reach_takes_the_first_crossing():
    curve = [(1.0, 3.0), (2.0, 2.0), (3.0, 2.5), (4.0, 1.0)]
    assert bases_to_reach(curve, 2.5) == pytest.approx(1.5)
    assert bases_to_reach(curve, 3.0) == 1.0
    assert bases_to_reach(curve, 0.5) is None


def test_compare_rejects_malformed_arguments(tmp_path, capsys):
    assert main(["compare", "--runs", "no_equals_sign", "--out", str(tmp_path)]) == 2
    assert "--runs expects NAME=PATH, got 'no_equals_sign'" in capsys.readouterr().err
    run = fake_run(tmp_path, "h0", 1.9)
    assert (
        main(
            [
                "compare",
                "--runs",
                f"h={run}",
                f"h={run}",
                "--test",
                f"h={tmp_path}/x.json",
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 2
    )
    assert "--test gives 1 file(s) for 'h' but --runs gives 2" in capsys.readouterr().err
    assert main(["compare", "--runs", f"h={run}", "--reference", "mamba2", "--out", str(tmp_path / "o")]) == 2
    assert "--reference 'mamba2' is not one of the runs (h)" in capsys.readouterr().err


def test_comparison_plot_shades_the_spread_over_seeds(tmp_path):
    from matplotlib.collections import PolyCollection

    from hnet_genomics.reporting.report import bpb_figure

    runs = {
        "hnet": [
            fake_run(tmp_path, "h0", 0, curve=[2.5, 2.1, 1.9]),
            fake_run(tmp_path, "h1", 0, curve=[2.3, 1.9, 1.8]),
        ],
        "mamba2": [fake_run(tmp_path, "m0", 0, curve=[2.6, 2.2, 2.0])],
    }
    paths = compare_runs(runs, tmp_path / "cmp")
    summary = json.loads(paths["json"].read_text())["runs"]
    assert summary["hnet"]["seed_range"] == [[8192, 2.3, 2.5], [16384, 1.9, 2.1], [24576, 1.8, 1.9]]
    assert summary["mamba2"]["seed_range"] == []  # one seed: no spread to show
    fig = bpb_figure(
        {n: summary[n]["curve"] for n in summary},
        {"uniform": 2.0},
        "t",
        bands={n: summary[n]["seed_range"] for n in summary},
    )
    bands = [c for c in fig.axes[0].collections if isinstance(c, PolyCollection)]
    assert len(bands) == 1 and "range over seeds" in fig.axes[0].get_title()
