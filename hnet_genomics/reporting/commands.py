"""``hnet-genomics report`` and ``hnet-genomics compare``: markdown + CSV + PNG from finished runs' JSON files."""

from __future__ import annotations

import argparse
from pathlib import Path

from hnet_genomics.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="markdown report of one pretraining run (bpb vs Markov, curves, enrichment, tracks)",
        description="Collect a pretraining run's metrics, its held-out evaluation, the Markov reference, "
                    "boundary enrichment and boundary tracks into one markdown page with PNGs beside it. "
                    "Every input is optional; sections without input are left out.")
    p.add_argument("--out", type=Path, required=True, help="markdown file to write (PNGs go beside it)")
    p.add_argument("--pretrain", type=Path, help="output directory of `hnet-genomics pretrain`")
    p.add_argument("--eval", dest="evaluation", type=Path, help="JSON of `hnet-genomics eval --model`")
    p.add_argument("--markov", type=Path, help="JSON of `hnet-genomics eval --baseline markov`")
    p.add_argument("--enrichment", type=Path, help="output directory of `hnet-genomics enrichment`")
    p.add_argument("--tracks", type=Path, help="PREFIX given to `hnet-genomics boundaries --out`")
    p.set_defaults(func=_report)

    p = sub.add_parser(
        "compare", help="table + plot of several pretraining runs trained on the same data and budget",
        description="Read each run's metrics.json and write comparison.md, comparison.csv and val_bpb.png "
                    "(validation bits per base against bases seen).")
    p.add_argument("--runs", nargs="+", required=True, metavar="NAME=DIR",
                   help="run name and its `hnet-genomics pretrain` output directory")
    p.add_argument("--markov", type=Path, help="JSON of `hnet-genomics eval --baseline markov` drawn as a reference")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.set_defaults(func=_compare)


def _report(args: argparse.Namespace) -> int:
    from hnet_genomics.reporting.report import write_report

    path = write_report(args.out, pretrain=args.pretrain, evaluation=args.evaluation, markov=args.markov,
                        enrichment=args.enrichment, tracks=args.tracks)
    print(path)
    return 0


def parse_runs(items: list[str]) -> dict[str, Path]:
    runs: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"--runs expects NAME=DIR, got '{item}'")
        if name in runs:
            raise ConfigError(f"--runs names run '{name}' twice")
        runs[name] = Path(path)
    return runs


def _compare(args: argparse.Namespace) -> int:
    from hnet_genomics.reporting.report import compare_runs

    paths = compare_runs(parse_runs(args.runs), args.out, markov=args.markov)
    print(paths["md"])
    return 0
