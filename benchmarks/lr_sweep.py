"""Learning-rate sweep at the baseline comparison's budget, so each model is compared at its own best LR.

Every (model, LR) pair is one pretraining run of the `compare_baselines` workflow with the settings of
``benchmarks/compare_demo.yaml`` (same genome, splits, windows, steps and schedule), seed 0 unless ``--seed``;
the table ranks each model's LRs by the final validation bpb on the whole valid split (the test split is never
read).

    python benchmarks/lr_sweep.py --workdir /tmp/lr_sweep --lrs 1e-3 3e-3 1e-2 \\
        --models hnet_1stage=dna/hnet_1stage_tiny mamba2=dna/mamba2_tiny
    python benchmarks/lr_sweep.py --workdir /tmp/lr_sweep ... --extra mamba2=3e-2   # extend a model's grid
    python benchmarks/lr_sweep.py --workdir /tmp/lr_sweep ... --report-only   # table from finished runs

Runs go to WORKDIR/results/demo/pretrain/<model>-lr<LR>; a rerun skips finished ones (Snakemake).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from hardware import cpu_name  # noqa: E402

DEFAULT_MODELS = (
    "hnet_1stage=dna/hnet_1stage_tiny",
    "hnet_2stage=dna/hnet_2stage_tiny",
    "mamba2=dna/mamba2_tiny",
    "transformer=dna/transformer_tiny",
)


def lr_tag(lr: float) -> str:
    """3e-3 -> '3e-3' (run names may hold letters, digits, '_' and '-')."""
    mantissa, exponent = f"{lr:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def run_name(model: str, lr: float) -> str:
    return f"{model}-lr{lr_tag(lr)}"


def write_sweep_config(workdir: Path, models: dict[str, str], grid: dict[str, list[float]], seed: int) -> Path:
    """One YAML per (model, LR) extending the shipped config, and the workflow config naming them all."""
    configs = workdir / "configs"
    configs.mkdir(parents=True, exist_ok=True)
    runs = {}
    for model, base in models.items():
        for lr in grid[model]:
            path = configs / f"{run_name(model, lr)}.yaml"
            if base.endswith((".yaml", ".yml")):  # a user config: the workflow runs in WORKDIR
                base = str(Path(base).resolve())
            path.write_text(yaml.safe_dump({"base": base, "train": {"lr": lr}}, sort_keys=False))
            runs[run_name(model, lr)] = str(path)
    sweep = workdir / "sweep.yaml"
    first = next(iter(runs))
    sweep.write_text(
        yaml.safe_dump(
            {"models": runs, "main_model": first, "compare": {"seeds": [seed], "reference": "main"}}, sort_keys=False
        )
    )
    return sweep


def run_workflow(workdir: Path, sweep: Path, targets: list[str], cores: int) -> float:
    cmd = [
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        str(cores),
        "--set-threads",
        "pretrain=1",
        "--configfile",
        str(REPO / "benchmarks" / "compare_demo.yaml"),
        str(sweep),
        "--",
        *targets,
    ]
    print(" ".join(cmd), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0


def run_dir(model: str, lr: float, seed: int) -> str:
    """Where the workflow trains a run: seed 0 under its name, seed N under <name>-seedN."""
    return f"results/demo/pretrain/{run_name(model, lr)}" + (f"-seed{seed}" if seed else "")


def collect(workdir: Path, grid: dict[str, list[float]], seed: int) -> dict[str, dict[float, dict]]:
    table: dict[str, dict[float, dict]] = {}
    for model, lrs in grid.items():
        for lr in lrs:
            path = workdir / run_dir(model, lr, seed) / "metrics.json"
            if path.is_file():
                table.setdefault(model, {})[lr] = json.loads(path.read_text())
    return table


def report(
    table: dict[str, dict[float, dict]],
    models: dict[str, str],
    lrs: list[float],
    command: str,
    wall: float | None,
    seed: int = 0,
) -> str:
    lines = [
        f"# Learning-rate sweep at the comparison's budget ({cpu_name()})",
        "",
        "Command:",
        "",
        "```bash",
        command,
        "```",
        "",
    ]
    if wall is not None:
        lines += [
            f"{wall / 60:.0f} min wall for the runs this invocation trained (two single-thread jobs at a "
            f"time on a shared machine).",
            "",
        ]
    lines += [
        "Each cell: final validation bits per base on the whole valid split (lower is better) after the "
        "budget of `benchmarks/compare_demo.yaml` (200 steps x 8 x 1,024 bases, 20 warm-up steps, WSD), "
        f"seed {seed}; H-Nets also show the stage-1 compression reached. **Bold**: the model's best LR. The "
        "LR is the base rate; H-Net stages train at it times the paper's multipliers.",
        "",
        "| model | config | " + " | ".join(f"lr {lr_tag(lr)}" for lr in lrs) + " | best |",
        "|---|---|" + "---|" * len(lrs) + "---|",
    ]
    best_of = {}
    for model, base in models.items():
        runs = table.get(model, {})
        if runs:
            best_of[model] = min(runs, key=lambda lr: runs[lr]["val_bpb"])
        cells = []
        for lr in lrs:
            m = runs.get(lr)
            if m is None:
                cells.append("–")
                continue
            text = f"{m['val_bpb']:.4f}"
            if m.get("compression_ratios"):
                text += " (N " + " / ".join(f"{r:.2f}" for r in m["compression_ratios"]) + ")"
            cells.append(f"**{text}**" if lr == best_of.get(model) else text)
        best = lr_tag(best_of[model]) if model in best_of else "–"
        lines.append(f"| {model} | `{base}` | " + " | ".join(cells) + f" | {best} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", type=Path, required=True)
    p.add_argument("--lrs", type=float, nargs="+", default=[1e-3, 3e-3, 1e-2])
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), help="name=shipped config or YAML")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "lr-sweep-cpu.md")
    p.add_argument(
        "--extra",
        nargs="+",
        default=[],
        metavar="MODEL=LR",
        help="more LRs for one model, e.g. where its best LR sits at the edge of the grid",
    )
    p.add_argument("--report-only", action="store_true", help="only write the table from finished runs")
    args = p.parse_args(argv)
    models = dict(item.split("=", 1) for item in args.models)
    grid = {m: list(args.lrs) for m in models}
    for item in args.extra:
        model, lr = item.split("=", 1)
        grid[model].append(float(lr))
    workdir = args.workdir.resolve()
    sweep = write_sweep_config(workdir, models, grid, args.seed)
    wall = None
    if not args.report_only:
        targets = [run_dir(m, lr, args.seed) for m in models for lr in grid[m]]
        wall = run_workflow(workdir, sweep, targets, args.cores)
    command = (
        "python benchmarks/lr_sweep.py --workdir WORKDIR --lrs "
        + " ".join(lr_tag(x) for x in args.lrs)
        + " --models "
        + " ".join(args.models)
        + (" --extra " + " ".join(args.extra) if args.extra else "")
    )
    columns = sorted({lr for lrs in grid.values() for lr in lrs})
    command += f" --seed {args.seed}" if args.seed else ""
    text = report(collect(workdir, grid, args.seed), models, columns, command, wall, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
