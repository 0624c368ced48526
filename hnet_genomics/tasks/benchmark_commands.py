"""``hnet-genomics benchmark``, ``benchmark-table`` and ``benchmark-fetch``: a standard suite, task by task,
through the fine-tuning protocol, and one table beside the published numbers."""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

from hnet_genomics.devices import DEVICE_HELP, PRECISION_HELP, resolve_device, resolve_precision
from hnet_genomics.errors import ConfigError, DataError, OutputError
from hnet_genomics.options import (
    MODEL_HELP,
    add_quiet,
    add_threads,
    apply_threads,
    check_output_dir,
    positive_float,
    positive_int,
    show_progress,
)
from hnet_genomics.outputs import check_paths, output_folder
from hnet_genomics.reporting.benchmark_table import FILES as TABLE_FILES
from hnet_genomics.tasks.suites import METRIC_NAMES, SUITES, Suite, SuiteTask, load_suite

MODEL_LABEL, KMER_LABEL = "H-Net (ours)", "6-mer LR (ours)"


def _task_list(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected comma-separated task names, got '{text}'")
    return names


SUITE_HELP = (
    f"{' or '.join(SUITES)}, or a suite registry YAML of your own (the form of "
    "hnet_genomics/tasks/benchmark_suites/*.yaml; no published results are quoted for it)"
)


def _add_selection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--suite", required=True, metavar="SUITE", help=SUITE_HELP)
    p.add_argument(
        "--tasks",
        type=_task_list,
        metavar="A,B",
        help="comma-separated task names, as the suite names them (default: every task of the suite)",
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "benchmark",
        help="run a standard benchmark suite (Genomic Benchmarks, Nucleotide Transformer tasks)",
        description="Fine-tune a model on every task of a standard suite with the fine-tuning protocol (seeds, "
        "validation-selected epoch, the test split once, the 6-mer baseline on the same splits), each task "
        "scored by the metric its published results use, and write OUT/benchmark.{md,csv,json,png} with "
        "published results of other models quoted beside ours. Reads each suite's own layout: Genomic "
        "Benchmarks DATA/<task>/{train,test}/<class>/<id>.txt, Nucleotide Transformer DATA/<task>/"
        "{train,test}.fna ('>name|label'; also .csv or .parquet with sequence and label columns). A finished "
        "task (OUT/<task>/metrics.json) is not recomputed.",
    )
    _add_selection(p)
    p.add_argument(
        "--data",
        type=Path,
        required=True,
        help="folder holding the suite, one folder per task; with --fetch, missing tasks are downloaded into it",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", type=Path, help="pretrained model: " + MODEL_HELP)
    src.add_argument("--config", help="config name or YAML: fine-tune this architecture from scratch")
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="output folder: <task>/metrics.json and <task>/best/ per task, and the table; created if missing",
    )
    p.add_argument("--seeds", type=positive_int, default=3, metavar="K", help="seeds per task (0..K-1)")
    p.add_argument("--epochs", type=positive_int, default=3, metavar="N", help="passes over each training split")
    p.add_argument(
        "--max-train",
        type=positive_int,
        metavar="N",
        help="train on a seeded subset of N sequences of each task (quick CPU runs; validation and test stay whole)",
    )
    p.add_argument(
        "--max-len",
        type=positive_int,
        metavar="BP",
        help="read at most BP bases of each sequence (default: each task's own context from the suite registry)",
    )
    p.add_argument(
        "--rc-tta",
        action="store_true",
        help="average predictions over both strands on tasks whose sequences have no orientation",
    )
    p.add_argument("--no-kmer", action="store_true", help="skip the 6-mer logistic-regression baseline")
    p.add_argument(
        "--fetch",
        action="store_true",
        help="download the selected tasks missing from --data (needs the network and "
        "pip install 'hnet-genomics[benchmarks]')",
    )
    p.add_argument("--no-table", action="store_true", help="run the tasks only (benchmark-table writes it later)")
    p.add_argument("--batch-size", type=positive_int, default=32, metavar="N", help="sequences per step")
    p.add_argument("--lr", type=positive_float, default=5e-4, help="AdamW peak learning rate")
    p.add_argument(
        "--pooling", choices=("mean", "last", "chunk"), default="mean", help="per-base features -> one vector"
    )
    add_threads(p)
    add_quiet(p)
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--precision", default="auto", help=PRECISION_HELP)
    p.set_defaults(func=run)

    p = sub.add_parser(
        "benchmark-table",
        help="the table and plot of a suite's finished benchmark tasks",
        description="Read RUNS/<task>/metrics.json of every finished task of the suite and write "
        "OUT/benchmark.{md,csv,json,png}: ours as mean ± std over seeds, published results quoted with "
        "their sources; tasks not run are marked so.",
    )
    p.add_argument("--suite", required=True, metavar="SUITE", help=SUITE_HELP)
    p.add_argument("--runs", type=Path, required=True, help="the --out folder of `hnet-genomics benchmark`")
    p.add_argument("--out", type=Path, help="folder for the table (default: --runs)")
    p.set_defaults(func=table)

    p = sub.add_parser(
        "benchmark-fetch",
        help="download a suite's tasks in the suite's own layout",
        description="Download the selected tasks missing from --data through the suite's own channel (the "
        "genomic-benchmarks package; the Hugging Face Hub dataset at a pinned revision). Needs the network "
        "and pip install 'hnet-genomics[benchmarks]'. Each task lands whole or not at all.",
    )
    _add_selection(p)
    p.add_argument("--data", type=Path, required=True, help="folder of the suite, one folder per task")
    add_quiet(p)
    p.set_defaults(func=fetch)


def _check_data(suite: Suite, tasks: list[SuiteTask], data: Path, will_fetch: bool) -> None:
    from hnet_genomics.tasks.benchmark import missing_tasks

    if will_fetch:
        check_output_dir(data, "--data")
        return
    if not data.is_dir():
        raise DataError(f"--data {data}: no such folder (add --fetch to download the suite into it)")
    missing = missing_tasks(suite, tasks, data)
    if missing:
        names = ", ".join(t.name for t in missing[:4]) + (", ..." if len(missing) > 4 else "")
        raise DataError(
            f"--data {data}: {len(missing)} task(s) missing or incomplete ({names}); add --fetch to download "
            f"them, or select others with --tasks"
        )


def fetch_missing(suite: Suite, tasks: list[SuiteTask], data: Path, log=print) -> list[SuiteTask]:
    """Download the tasks missing from ``data``; returns them."""
    from hnet_genomics.data.suite_fetch import fetch_genomic_benchmarks_task, fetch_hub_task
    from hnet_genomics.tasks.benchmark import missing_tasks

    missing = missing_tasks(suite, tasks, data)
    for task in missing:
        t0 = time.perf_counter()
        src = suite.fetch
        if src.via == "none":
            raise DataError(f"suite {suite.name} has no download channel; put {task.name}/ into {data} yourself")
        if src.via == "genomic-benchmarks":
            assert src.version is not None
            fetch_genomic_benchmarks_task(task.name, src.version, data / task.name)
        else:
            assert src.repo is not None and src.revision is not None
            fetch_hub_task(src.repo, src.revision, task.name, list(src.files), data / task.name)
        log(f"fetched {task.name} into {data / task.name} ({time.perf_counter() - t0:.0f}s)")
    return missing


def run(args: argparse.Namespace) -> int:
    from hnet_genomics.tasks.backbones import load_backbone
    from hnet_genomics.tasks.benchmark import backbone_fingerprint, run_task
    from hnet_genomics.tasks.finetune import FinetuneSettings, check_classifier_folder

    suite = load_suite(args.suite)
    tasks = suite.select(args.tasks)
    if args.out.resolve() == args.data.resolve():
        raise OutputError(f"--out {args.out}: is the --data folder; results go beside the suite, not into it")
    check_paths(
        {"--data": args.data if args.data.is_dir() else None, "--model": args.model, "--config": args.config},
        [output_folder(args.out, files=() if args.no_table else TABLE_FILES, folders=[t.name for t in tasks])],
    )
    _check_data(suite, tasks, args.data, args.fetch)
    for task in tasks:
        check_classifier_folder(args.out / task.name / "best")
    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)
    apply_threads(args.threads, args.quiet)
    from hnet_genomics.model.hub import model_folder

    model_dir = model_folder(args.model) if args.model is not None else None  # a Hub repo id becomes its snapshot
    backbone = load_backbone(model_dir, args.config)
    assert backbone is not None  # argparse requires --model or --config
    from hnet_genomics.kernels import dispatch

    dispatch.report(device, "benchmark")
    if args.fetch:
        fetch_missing(suite, tasks, args.data)
    backbone_id = backbone_fingerprint(model_dir, None if model_dir else backbone.config)
    base = FinetuneSettings(
        epochs=args.epochs,
        seeds=args.seeds,
        batch_size=args.batch_size,
        lr=args.lr,
        pooling=args.pooling,
        rc_tta=args.rc_tta,
        train_limit=args.max_train,
        device=device,
        precision=precision,
    )
    t0 = time.perf_counter()
    for i, task in enumerate(tasks, start=1):
        print(f"[{i}/{len(tasks)}] {suite.name} {task.name} ({METRIC_NAMES[task.metric]})", flush=True)
        report, _ = run_task(
            suite,
            task,
            args.data,
            args.out,
            base,
            backbone.make,
            backbone.description,
            backbone_id,
            run_kmer=not args.no_kmer,
            max_len_cap=args.max_len,
            progress=show_progress(args.quiet),
        )
        print(_summary(task, report), flush=True)
    if not args.no_table:
        written = write_table(suite, args.out, args.out)
        print(f"wrote {written[0]} and {', '.join(p.name for p in written[1:])}")
    print(f"{len(tasks)} task(s) in {time.perf_counter() - t0:.0f}s")
    return 0


def _summary(task: SuiteTask, report: dict) -> str:
    key = f"test_{task.metric}"
    parts = []
    for name in ("model", "kmer"):
        res = report["results"].get(name)
        if res is not None:
            parts.append(f"{name} {METRIC_NAMES[task.metric]} {res['mean'][key]:.4f}±{res['std'][key]:.4f}")
    return f"{task.name}: " + "  ".join(parts)


def table(args: argparse.Namespace) -> int:
    suite = load_suite(args.suite)
    if not args.runs.is_dir():
        raise DataError(f"--runs {args.runs}: no such folder")
    out = args.out or args.runs
    # The table reads each task's metrics.json under --runs and writes only benchmark.* files, so --out may be --runs.
    reads = [f for f in sorted(args.runs.glob("*/metrics.json"))]
    check_paths({"--runs": reads}, [output_folder(out, files=TABLE_FILES)])
    written = write_table(suite, args.runs, out)
    print(f"wrote {written[0]} and {', '.join(p.name for p in written[1:])}")
    return 0


def fetch(args: argparse.Namespace) -> int:
    suite = load_suite(args.suite)
    tasks = suite.select(args.tasks)
    check_output_dir(args.data, "--data")
    got = fetch_missing(suite, tasks, args.data)
    print(f"{len(got)} task(s) fetched, {len(tasks) - len(got)} already in {args.data}")
    return 0


# ---------------------------------------------------------------------------------------------------------
# the table


_PROTOCOL_KEYS = ("epochs", "seeds", "lr", "batch_size", "pooling", "train_limit", "val_fraction", "layer_decay")


def _score(report: dict, name: str, metric: str):
    from hnet_genomics.reporting.benchmark_table import Score

    res = report["results"].get(name)
    if res is None:
        return None
    key = f"test_{metric}"
    return Score(res["mean"][key], res["std"][key], len(res["seeds"]))


def write_table(suite: Suite, runs: Path, out: Path) -> list[Path]:
    """The table over every task of the suite: finished ones from ``runs``, the others marked not run."""
    from hnet_genomics.reporting.benchmark_table import TableMeta, TaskRow, write_benchmark_table
    from hnet_genomics.reporting.published import Published, load_published
    from hnet_genomics.tasks.benchmark import read_task_report

    if suite.name in SUITES:
        check_published(suite)
    reports = {t.name: read_task_report(runs, suite, t) for t in suite.tasks}
    done = {name: r for name, r in reports.items() if r is not None}
    if not done:
        raise DataError(f"--runs {runs}: no finished {suite.name} task (no <task>/metrics.json)")
    protocols = {
        name: tuple((k, r["benchmark"]["settings"].get(k)) for k in _PROTOCOL_KEYS)
        + (("backbone", r["benchmark"]["backbone"]),)
        for name, r in done.items()
    }
    common = Counter(protocols.values()).most_common(1)[0][0]
    rows = []
    for task in suite.tasks:
        report = reports[task.name]
        notes: list[str] = []
        if report is not None:
            block = report["benchmark"]
            differs = [f"{k} {v}" for k, v in protocols[task.name] if (k, v) not in common]
            if differs:
                notes.append("run with " + ", ".join(differs) + " (other tasks: see above)")
            if block["settings"].get("rc_tta"):
                notes.append("predictions averaged over both strands")
            cut = block.get("truncated") or {}
            if cut.get("train") or cut.get("test"):
                notes.append(
                    f"{cut.get('train', 0)} train / {cut.get('test', 0)} test sequences cut to "
                    f"{block['settings']['max_len']} bp"
                )
            limit = block["settings"].get("train_limit")
            if limit is not None and limit < report["task"]["n_train_total"]:
                notes.append(f"trained on {limit} of {report['task']['n_train_total']} training sequences")
        rows.append(
            TaskRow(
                task.name,
                task.label,
                task.metric,
                METRIC_NAMES[task.metric],
                None if report is None else _score(report, "model", task.metric),
                None if report is None else _score(report, "kmer", task.metric),
                tuple(notes),
            )
        )
    settings = dict(common)
    lines = (
        f"Model: {settings['backbone']}; protocol: {settings['seeds']} seeds, {settings['epochs']} epoch(s), "
        f"AdamW lr {settings['lr']}, batch {settings['batch_size']}, {settings['pooling']} pooling, "
        f"{settings['val_fraction']:.0%} of each training split held out for validation; the epoch, the seed "
        "kept and the k-mer C chosen on the task's metric.",
        f"{len(done)} of {len(suite.tasks)} tasks finished in {runs}.",
    )
    meta = TableMeta(suite.name, suite.title, suite.citation, MODEL_LABEL, KMER_LABEL, lines)
    published = load_published(suite.name) if suite.name in SUITES else Published(suite.name, {}, (), ())
    return write_benchmark_table(out, meta, rows, published)


def check_published(suite: Suite) -> None:
    """Every quoted task is a task of the suite (used by the tests and at table time)."""
    from hnet_genomics.reporting.published import load_published

    names = {t.name for t in suite.tasks}
    for col in load_published(suite.name).columns:
        unknown = sorted(set(col.results) - names)
        if unknown:
            raise ConfigError(f"published {suite.name}: {col.model} quotes unknown task(s) {unknown}")
