"""The main job's figures over seeds: one row per `snakemake pretrain_hg38` run, then mean ± std over them.

    python benchmarks/main_job_seeds.py RESULTS_DIR [RESULTS_DIR ...] [--out benchmarks/results/main-job-seeds-cpu.md]

Each RESULTS_DIR is the `results/demo` folder of one main-job run (its seed set with
`--configfile` holding `pretrain_set: [..., train.seed=N]`). Every figure the README quotes is read from the
run's own files (eval JSONs, metrics.json, enrichment summary.json), so tables are copied, never retyped.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hardware import cpu_name  # noqa: E402

from hnet_genomics.atomic import write_text_atomic  # noqa: E402

COLUMNS = (
    ("seed", "seed"),
    ("test_bpb", "test bpb"),
    ("val_bpb", "val bpb"),
    ("compression_val", "bases per chunk (val)"),
    ("compression_test", "bases per chunk (test)"),
    ("ratio_10", "±10 bp: obs / exp"),
    ("p_10", "p"),
    ("ratio_0", "0 bp: obs / exp"),
    ("p_0", "p"),
    ("inside_mean", "chunk mean in exons (bp)"),
    ("outside_mean", "outside (bp)"),
    ("mw_p", "Mann-Whitney p"),
)


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def run_figures(results: Path, run: str) -> dict:
    metrics = _json(results / "pretrain" / run / "metrics.json")
    test = _json(results / "eval" / f"{run}.test.json")
    enrichment = _json(results / "enrichment" / run / "summary.json")
    seed = yaml.safe_load((results / "pretrain" / run / "config.yaml").read_text())["train"]["seed"]
    by_flank = {r["flank"]: r for r in enrichment["enrichment"] if r["edges"] == "both"}
    lengths = enrichment["chunk_lengths"]
    return {
        "seed": str(seed),
        "test_bpb": test["bpb"],
        "val_bpb": metrics["val_bpb"],
        "compression_val": metrics["compression_ratios"][0],
        "compression_test": test["compression_ratios"][0],
        "ratio_10": by_flank[10]["ratio"],
        "obs_10": by_flank[10]["observed"],
        "exp_10": by_flank[10]["expected"],
        "p_10": by_flank[10]["p_enrichment"],
        "ratio_0": by_flank[0]["ratio"],
        "p_0": by_flank[0]["p_enrichment"],
        "inside_mean": lengths["inside"]["mean_bp"],
        "outside_mean": lengths["outside"]["mean_bp"],
        "mw_p": lengths.get("mann_whitney_p", float("nan")),
        "markov_bpb": _json(results / "eval" / "markov" / "order10.test.json")["bpb"],
    }


def _cell(key: str, value) -> str:
    if isinstance(value, str):
        return value
    if key.startswith(("p_", "mw_p")):
        return f"{value:.2g}"
    return f"{value:.3f}" if key.endswith("bpb") else f"{value:.2f}"


def table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(title for _, title in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cell(k, r[k]) for k, _ in COLUMNS) + " |" for r in rows]
    if len(rows) > 1:
        cells = [f"mean ± std ({len(rows)}; p: range)"]
        for key, _ in COLUMNS[1:]:
            values = [r[key] for r in rows]
            if key.startswith(("p_", "mw_p")):  # a mean of p-values means nothing: their range
                cells.append(f"{_cell(key, min(values))} – {_cell(key, max(values))}")
            else:
                cells.append(f"{_cell(key, statistics.mean(values))} ± {_cell(key, statistics.stdev(values))}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", nargs="+", type=Path, help="results/demo folders of main-job runs")
    p.add_argument("--run", default="hnet_1stage", help="the main run's name (default hnet_1stage)")
    p.add_argument("--out", type=Path, help="also write this markdown file")
    args = p.parse_args(argv)
    rows = [run_figures(r, args.run) for r in args.results]
    text = table(rows)
    print(text)
    if args.out:
        markov = sorted({round(r["markov_bpb"], 4) for r in rows})
        write_text_atomic(
            args.out,
            f"# The main job over seeds\n\nMachine: {cpu_name()}. {len(rows)} runs of `snakemake pretrain_hg38 "
            f"--cores 2` (tiny 1-stage H-Net, 500 steps, demo HLA region), one per `train.seed`, each in its own "
            f"folder; the order-10 Markov reference, which has no seed, scores {', '.join(map(str, markov))} test "
            f"bpb. Enrichment: stage-1 boundaries within ±10 bp / exactly on the test region's exon edges, "
            f"observed over expected with the boundaries shuffled (10,000 permutations, one-sided p).\n\n"
            f"{text}\n\nMade by `python benchmarks/main_job_seeds.py {' '.join(map(str, args.results))}`.\n",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
