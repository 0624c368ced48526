"""``hnet-genomics report`` and ``hnet-genomics compare``: markdown + CSV + PNG from finished runs' JSON files."""

from __future__ import annotations

import argparse
from pathlib import Path

COMPARE_FILES = ("comparison.md", "comparison.csv", "comparison.json", "val_bpb.png")


def _track_prefix_files(prefix: Path) -> list[Path]:
    """The track files at a prefix that the report lists (the report's own reader, without its error)."""
    from hnet_genomics.reporting.report import TRACK_SUFFIXES

    if not prefix.parent.is_dir():
        return []
    return sorted(p for p in prefix.parent.glob(f"{prefix.name}.*") if p.name.endswith(TRACK_SUFFIXES))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="markdown report of one pretraining run (bpb vs Markov, curves, enrichment, tracks)",
        description="Collect a pretraining run's metrics, its held-out evaluation, the Markov reference, "
        "boundary enrichment and boundary tracks into one markdown page with PNGs beside it. "
        "Every input is optional; sections without input are left out. A text run's report is in bytes "
        "and bits per byte.",
    )
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="markdown file to write; PNGs go beside it (curves.png, val_bpb.png, edge_density.png) and "
        "missing parent folders are created",
    )
    p.add_argument("--pretrain", type=Path, help="output directory of `hnet-genomics pretrain`")
    p.add_argument("--eval", dest="evaluation", type=Path, help="JSON of `hnet-genomics eval --model`")
    p.add_argument("--markov", type=Path, help="JSON of `hnet-genomics eval --baseline markov`")
    p.add_argument("--enrichment", type=Path, help="output directory of `hnet-genomics enrichment`")
    p.add_argument("--tracks", type=Path, help="PREFIX given to `hnet-genomics boundaries --out`")
    p.set_defaults(func=_report)

    p = sub.add_parser(
        "compare",
        help="table + plot of several pretraining runs trained on the same data and budget",
        description="Read each run's metrics.json (and test-split eval JSON) and write comparison.md, "
        "comparison.csv, comparison.json and val_bpb.png (validation bits per base against bases "
        "seen, mean over seeds; bits per byte against bytes seen for text runs, which cannot be compared "
        "with DNA runs). Give a run name several times to aggregate its seeds.",
    )
    p.add_argument(
        "--runs",
        nargs="+",
        required=True,
        metavar="NAME=DIR",
        help="run name and its `hnet-genomics pretrain` output directory (repeat a name per seed)",
    )
    p.add_argument(
        "--test",
        nargs="+",
        default=[],
        metavar="NAME=JSON",
        help="`hnet-genomics eval --split test` result of each seed, in the order of --runs",
    )
    p.add_argument("--reference", metavar="NAME", help="run whose data efficiency against the others is reported")
    p.add_argument("--markov", type=Path, help="JSON of `hnet-genomics eval --baseline markov` drawn as a reference")
    p.add_argument("--out", type=Path, required=True, help="output folder (created with its parents if missing)")
    p.set_defaults(func=_compare)


def _report(args: argparse.Namespace) -> int:
    from hnet_genomics.outputs import check_paths, output_file
    from hnet_genomics.reporting.report import write_report

    pictures = (["curves.png", "val_bpb.png"] if args.pretrain else []) + (
        ["edge_density.png"] if args.enrichment else []
    )
    check_paths(
        {
            "--pretrain": args.pretrain,
            "--eval": args.evaluation,
            "--markov": args.markov,
            "--enrichment": args.enrichment,
            "--tracks": _track_prefix_files(args.tracks) if args.tracks else None,
        },
        [output_file(args.out, derived=[args.out.parent / p for p in pictures])],
    )
    path = write_report(
        args.out,
        pretrain=args.pretrain,
        evaluation=args.evaluation,
        markov=args.markov,
        enrichment=args.enrichment,
        tracks=args.tracks,
    )
    print(path)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from hnet_genomics.outputs import check_paths, output_folder
    from hnet_genomics.reporting.compare import check_seed_counts, compare_runs, parse_named_paths

    runs = parse_named_paths(args.runs, "--runs")
    tests = parse_named_paths(args.test, "--test")
    check_paths(
        {
            "--runs": [p for ps in runs.values() for p in ps],
            "--test": [p for ps in tests.values() for p in ps],
            "--markov": args.markov,
        },
        [output_folder(args.out, files=COMPARE_FILES)],
    )
    check_seed_counts(runs, tests)
    paths = compare_runs(runs, args.out, tests=tests, reference=args.reference, markov=args.markov)
    print(paths["md"])
    return 0
