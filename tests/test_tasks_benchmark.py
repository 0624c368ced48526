"""`hnet-genomics benchmark` end to end over small suites written in each suite's own layout: every task through
the fine-tuning protocol with its own metric, the k-mer baseline beside it, one table with the quoted published
numbers, resuming without recomputing, and the download path with the network replaced."""

from __future__ import annotations

import csv
import json

import pytest
import yaml
from suite_fixtures import fake_genomic_benchmarks, fake_hub, write_genomic_benchmarks_task, write_nt_task

from hnet_genomics import cli
from hnet_genomics.tasks import benchmark as benchmark_module
from hnet_genomics.tasks.finetune import _better

SMALL = {"n_train": 40, "n_test": 12, "length": 64}
RUN = ["--seeds", "2", "--epochs", "1", "--batch-size", "16", "--threads", "1", "--quiet"]


@pytest.fixture(scope="module")
def fast_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    path.write_text("base: dna/hnet_1stage_tiny\nmodel: {ssm: {chunk_size: 16}}\n")
    return path


@pytest.fixture(scope="module")
def gb_run(tmp_path_factory, fast_config):
    """Two Genomic Benchmarks tasks (one stranded, one with three classes) run once for the tests below."""
    root = tmp_path_factory.mktemp("gb")
    write_genomic_benchmarks_task(root / "data", "human_nontata_promoters", ["negative", "positive"], **SMALL)
    write_genomic_benchmarks_task(
        root / "data", "human_ensembl_regulatory", ["enhancer", "ocr", "promoter"], seed=1, **SMALL
    )
    argv = [
        "benchmark",
        "--suite",
        "genomic-benchmarks",
        "--data",
        str(root / "data"),
        "--config",
        str(fast_config),
        "--out",
        str(root / "out"),
        "--tasks",
        "human_nontata_promoters,human_ensembl_regulatory",
        "--rc-tta",
        *RUN,
    ]
    assert cli.main(argv) == 0
    return root, argv


def _metrics(out, task):
    return json.loads((out / task / "metrics.json").read_text())


def test_each_task_runs_the_protocol_with_its_registry_settings(gb_run):
    root, _ = gb_run
    promoters = _metrics(root / "out", "human_nontata_promoters")
    regulatory = _metrics(root / "out", "human_ensembl_regulatory")
    for report in (promoters, regulatory):
        block = report["benchmark"]
        assert block["suite"] == "genomic-benchmarks" and block["metric"] == "accuracy"
        assert block["settings"]["select_metric"] == "accuracy" and block["settings"]["max_len"] == 1024
        assert len(block["data_sha1"]) == 40 and len(block["backbone_sha1"]) == 40
        for name in ("model", "kmer"):
            assert [s["seed"] for s in report["results"][name]["seeds"]] == [0, 1]
            assert "test_accuracy" in report["results"][name]["mean"]
        assert (root / "out" / block["task"] / "best" / "classifier.json").is_file()
    # promoters are oriented: no reverse-complement averaging even though --rc-tta was asked for
    assert promoters["benchmark"]["settings"]["rc_tta"] is False and regulatory["benchmark"]["settings"]["rc_tta"]
    assert regulatory["task"]["classes"] == ["enhancer", "ocr", "promoter"]
    # the planted motif is learnable: the 6-mer baseline is far above chance on the binary task
    assert promoters["results"]["kmer"]["mean"]["test_accuracy"] > 0.75


def test_the_table_marks_ours_and_quotes_the_published_numbers_with_their_sources(gb_run):
    root, _ = gb_run
    out = root / "out"
    md = (out / "benchmark.md").read_text()
    regulatory = _metrics(out, "human_ensembl_regulatory")["results"]
    mean, std = regulatory["model"]["mean"]["test_accuracy"], regulatory["model"]["std"]["test_accuracy"]
    row = next(line for line in md.splitlines() if line.startswith("| Human regulatory |"))
    assert f"| {mean:.3f} ± {std:.3f} |" in row
    assert "| 0.869 (±0.012) | 0.872 (±0.011) | 0.873 (±0.007) | 0.938 | — | — |" in row  # quoted as printed
    assert "| Mouse enhancers | accuracy | not run | not run | 0.780 (±0.025)" in md
    assert "[1] Schiff et al., Caduceus" in md and "(±) = max - min over 5 seeds" in md
    assert "[2] Nguyen et al., HyenaDNA" in md and "Printed there as percentages" in md
    assert "DNABERT-2 and the Nucleotide Transformer: no Genomic Benchmarks results" in md
    assert "Human regulatory: predictions averaged over both strands" in md
    records = list(csv.DictReader((out / "benchmark.csv").open()))
    ours = [r for r in records if r["origin"] == "ours" and r["task"] == "human_ensembl_regulatory"]
    assert {r["model"] for r in ours} == {"H-Net (ours)", "6-mer LR (ours)"}
    assert next(r for r in ours if r["model"] == "H-Net (ours)")["spread_kind"] == "sample std over 2 seeds"
    quoted = [r for r in records if r["origin"] == "quoted" and r["task"] == "dummy_mouse_enhancers_ensembl"]
    assert {r["value"] for r in quoted if r["model"] == "Caduceus-PS (470K)"} == {"0.793"}
    assert json.loads((out / "benchmark.json").read_text())["tasks"][5]["task"] == "human_ensembl_regulatory"
    assert (out / "benchmark.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_finished_task_is_not_recomputed_and_another_runs_results_are_not_replaced(gb_run, monkeypatch, capsys):
    root, argv = gb_run
    before = (root / "out" / "human_nontata_promoters" / "metrics.json").read_bytes()

    def no_training(*args, **kwargs):
        raise AssertionError("a finished task was fine-tuned again")

    monkeypatch.setattr(benchmark_module, "run_finetune", no_training)
    capsys.readouterr()
    assert cli.main(argv) == 0
    assert "human_nontata_promoters: finished earlier" in capsys.readouterr().out
    assert (root / "out" / "human_nontata_promoters" / "metrics.json").read_bytes() == before
    more_seeds = [a if a != "2" else "3" for a in argv]
    assert cli.main(more_seeds) == 2
    err = capsys.readouterr().err
    assert "holds a result of another run (settings.seeds 2 there, 3 now)" in err
    assert (root / "out" / "human_nontata_promoters" / "metrics.json").read_bytes() == before


def test_nucleotide_transformer_tasks_are_scored_and_selected_by_their_own_metric(tmp_path, fast_config, capsys):
    data = tmp_path / "data"
    write_nt_task(data, "H3", fmt="fna", **SMALL)
    write_nt_task(data, "promoter_tata", fmt="csv", seed=2, **SMALL)
    write_nt_task(data, "splice_sites_all", n_classes=3, fmt="parquet", seed=3, **SMALL)
    argv = ["benchmark", "--suite", "nucleotide-transformer", "--data", str(data), "--config", str(fast_config)]
    argv += ["--out", str(tmp_path / "out"), "--tasks", "H3,promoter_tata,splice_sites_all", "--max-len", "48"]
    assert cli.main(argv + RUN) == 0
    expected = {"H3": ("mcc", 500), "promoter_tata": ("f1_macro", 300), "splice_sites_all": ("accuracy", 600)}
    for task, (metric, _) in expected.items():
        report = _metrics(tmp_path / "out", task)
        settings = report["benchmark"]["settings"]
        assert report["benchmark"]["metric"] == settings["select_metric"] == metric
        assert settings["max_len"] == 48 and report["benchmark"]["truncated"] == {"train": 40, "test": 12}
        assert f"test_{metric}" in report["results"]["model"]["mean"]
    md = (tmp_path / "out" / "benchmark.md").read_text()
    assert "| Promoter TATA | macro F1 |" in md and "| H3 | MCC |" in md and "| Splice sites all | accuracy |" in md
    assert "H3: 40 train / 12 test sequences cut to 48 bp" in md
    assert "| 0.955 (±0.021) | 0.966 (±0.013) | 0.944 (±0.040) | 0.953 (±0.016) | 0.957 (±0.015) |" in md


def test_epochs_seeds_and_k_mer_c_are_chosen_on_the_selection_metric():
    val_new, val_best = {"accuracy": 0.9, "mcc": 0.1}, {"accuracy": 0.5, "mcc": 0.3}
    assert _better("classification", val_new, val_best, "accuracy")
    assert not _better("classification", val_new, val_best, "mcc")


def test_missing_tasks_are_fetched_through_the_suite_package_with_the_network_replaced(
    tmp_path, fast_config, monkeypatch, capsys
):
    cloud = write_genomic_benchmarks_task(tmp_path / "cloud", "demo_human_or_worm", ["human", "worm"], **SMALL)
    calls: list = []
    fake_genomic_benchmarks(monkeypatch, cloud, calls)
    argv = ["benchmark", "--suite", "genomic-benchmarks", "--data", str(tmp_path / "suite"), "--config"]
    argv += [str(fast_config), "--out", str(tmp_path / "out"), "--tasks", "demo_human_or_worm", "--no-kmer"]
    argv += ["--no-table", "--seeds", "1", "--epochs", "1", "--batch-size", "16", "--threads", "1", "--quiet"]
    (tmp_path / "suite").mkdir()
    assert cli.main(argv) == 2  # without --fetch a missing task stops the run before any work
    assert "1 task(s) missing or incomplete (demo_human_or_worm); add --fetch" in capsys.readouterr().err
    assert not (tmp_path / "out").exists() and calls == []
    assert cli.main([*argv, "--fetch"]) == 0
    assert calls == [("demo_human_or_worm", 0, True)]
    report = _metrics(tmp_path / "out", "demo_human_or_worm")
    assert report["task"]["n_train_total"] == 40 and list(report["results"]) == ["model"]
    assert not (tmp_path / "out" / "benchmark.md").exists()  # --no-table: the table job writes it later
    assert cli.main(["benchmark-table", "--suite", "genomic-benchmarks", "--runs", str(tmp_path / "out")]) == 0
    assert "| Human vs worm | accuracy |" in (tmp_path / "out" / "benchmark.md").read_text()


def test_benchmark_fetch_downloads_hub_tasks_at_the_pinned_revision(tmp_path, monkeypatch, capsys):
    write_nt_task(tmp_path / "hub", "enhancers", **SMALL)
    calls: list = []
    fake_hub(monkeypatch, tmp_path / "hub", calls)
    argv = ["benchmark-fetch", "--suite", "nucleotide-transformer", "--data", str(tmp_path / "nt")]
    assert cli.main([*argv, "--tasks", "enhancers"]) == 0
    assert [c[1] for c in calls] == ["enhancers/train.fna", "enhancers/test.fna"]
    assert {c[3] for c in calls} == {"2657c8edde2107d3f5d9db9f43e09a0feb85fc2c"}
    assert cli.main([*argv, "--tasks", "enhancers"]) == 0 and len(calls) == 2  # present: not fetched again
    assert "0 task(s) fetched, 1 already in" in capsys.readouterr().out


def test_a_suite_of_ones_own_runs_from_its_registry_file_without_quoted_columns(tmp_path, fast_config, capsys):
    write_nt_task(tmp_path / "data", "my_task", **SMALL)
    task = {"group": "mine", "metric": "mcc", "max_len": 100, "classes": ["0", "1"], "stranded": False}
    registry = {
        "name": "my-suite",
        "title": "My suite",
        "citation": "my lab's tasks",
        "layout": "split-files",
        "fetch": {"via": "none"},
        "tasks": [{"name": "my_task", "label": "My task", **task}, {"name": "other", "label": "Other", **task}],
    }
    path = tmp_path / "my-suite.yaml"
    path.write_text(yaml.safe_dump(registry))
    argv = ["benchmark", "--suite", str(path), "--data", str(tmp_path / "data"), "--config", str(fast_config)]
    argv += ["--out", str(tmp_path / "out"), "--no-kmer", "--seeds", "1", "--epochs", "1", "--threads", "1", "--quiet"]
    assert cli.main([*argv, "--tasks", "my_task"]) == 0
    md = (tmp_path / "out" / "benchmark.md").read_text()
    assert md.startswith("# My suite: H-Net (ours)\n")
    assert "No published results are quoted for this suite." in md and "| My task | MCC |" in md
    assert "| Other | MCC | not run | not run |" in md
    assert cli.main([*argv, "--tasks", "other", "--fetch"]) == 2
    assert "suite my-suite has no download channel; put other/ into" in capsys.readouterr().err
    registry["name"] = "genomic-benchmarks"
    path.write_text(yaml.safe_dump(registry))
    assert cli.main([*argv, "--tasks", "my_task"]) == 2
    assert "name 'genomic-benchmarks' is a shipped suite's" in capsys.readouterr().err
