"""`hnet-genomics data ...`: download, prepare, split and size genomes from the command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from hnet_genomics.options import (
    add_quiet,
    add_threads,
    apply_threads,
    check_input_file,
    positive_float,
    positive_int,
    show_progress,
    thread_count,
)
from hnet_genomics.outputs import check_paths, output_file, output_folder


def _fetch_hg38(args: argparse.Namespace) -> int:
    from hnet_genomics.data.hg38 import SOURCES, fetch_hg38

    _, fasta, bed = SOURCES[args.source]
    names = [n for n in (fasta, f"{fasta}.fai", f"{fasta}.gzi", bed) if n]
    mirror = _local_folder(args.base_url)  # a file:// mirror is read from: --dest may not write over it
    check_paths(
        {"--base-url": [mirror / n for n in (fasta, bed) if n] if mirror else None},
        [output_folder(args.dest, "--dest", files=names)],
    )
    apply_threads(args.threads, args.quiet)
    paths = fetch_hg38(
        args.dest,
        source=args.source,
        base_url=args.base_url,
        expected_md5=args.md5,
        threads=thread_count(),
        progress=show_progress(args.quiet),
        timeout=args.timeout,
    )
    print(f"genome: {paths['fasta']}")
    if paths["intervals"] is not None:
        print(f"splits: {paths['intervals']}")
    return 0


def _local_folder(url: str | None) -> Path | None:
    """The folder of a ``file://`` URL, else None."""
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    parsed = urlparse(url or "")
    return Path(url2pathname(parsed.path)) if parsed.scheme == "file" else None


def _prepare(args: argparse.Namespace) -> int:
    from hnet_genomics.data.fasta import prepare_fasta

    if args.demo is not None:
        from hnet_genomics.data import demo

        args.fasta = {"human": demo.HUMAN_FASTA, "ecoli": demo.ECOLI_FASTA}[args.demo]
    check_input_file(args.fasta, "--fasta")
    check_paths({"--fasta": args.fasta}, [output_file(args.out, derived=[f"{args.out}.fai", f"{args.out}.gzi"])])
    apply_threads(args.threads, args.quiet)
    sizes = prepare_fasta(
        args.fasta, args.out, args.line_width, threads=thread_count(), progress=show_progress(args.quiet)
    )
    print(f"wrote {args.out}: {len(sizes)} record(s), {sum(sizes.values()):,} bp (+ .fai, .gzi)")
    return 0


def _split(args: argparse.Namespace) -> int:
    from hnet_genomics.config import Config, apply_overrides, config_from_dict, load_config
    from hnet_genomics.data.genome import Genome
    from hnet_genomics.data.intervals import make_splits, write_split_bed

    if args.config is not None:
        cfg = load_config(args.config, args.set)
    else:
        cfg = config_from_dict(apply_overrides(Config().to_dict(), args.set)) if args.set else Config()
    check_input_file(args.fasta, "--fasta")
    if args.intervals:
        check_input_file(args.intervals, "--intervals")
    check_paths(
        {
            "--fasta": args.fasta,
            "--intervals": args.intervals,
            "--config": args.config if args.config and Path(args.config).is_file() else None,
        },
        [output_file(args.out)],
    )
    genome = Genome(args.fasta)
    splits = make_splits(genome, cfg.data, args.intervals)
    write_split_bed(splits, args.out)
    summary = ", ".join(f"{k} {sum(iv.end - iv.start for iv in v):,} bp" for k, v in splits.items())
    print(f"wrote {args.out}: {summary}")
    return 0


def _sizes(args: argparse.Namespace) -> int:
    from hnet_genomics.atomic import write_text_atomic
    from hnet_genomics.data.genome import Genome

    check_input_file(args.fasta, "--fasta")
    check_paths({"--fasta": args.fasta}, [output_file(args.out)])
    genome = Genome(args.fasta)
    write_text_atomic(args.out, "".join(f"{name}\t{size}\n" for name, size in genome.sizes.items()))
    print(f"wrote {args.out}: {len(genome.sizes)} record(s)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    data = subparsers.add_parser("data", help="genome data: download HG38, prepare FASTA, write splits")
    sub = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "fetch-hg38",
        help="download HG38, verify, bgzip and index it",
        description="Download the human reference, check its md5 (looked up before the download), "
        "re-compress it as bgzip with .fai/.gzi indexes. An interrupted download is "
        "continued by running the same command again; a finished genome is not "
        "downloaded twice.",
    )
    p.add_argument("--dest", required=True, help="folder for the genome (and split BED); created if missing")
    p.add_argument(
        "--source",
        choices=["ucsc", "basenji"],
        default="ucsc",
        help="ucsc: hg38.fa.gz; basenji: hg38.ml.fa.gz + sequences_human.bed (HyenaDNA/Caduceus)",
    )
    p.add_argument(
        "--base-url",
        help="mirror to download from (any URL urllib opens, file:// included; default: the source's own site)",
    )
    p.add_argument(
        "--md5",
        metavar="HEX",
        help="expected md5 of the FASTA download (default: looked up in the mirror's md5sum.txt for "
        "ucsc; none published for basenji, whose gzip checksums are still verified)",
    )
    p.add_argument(
        "--timeout",
        type=positive_float,
        default=60.0,
        metavar="SECONDS",
        help="give up when the server sends nothing for this long",
    )
    add_threads(p, "bgzip compression threads")
    add_quiet(p)
    p.set_defaults(func=_fetch_hg38)

    p = sub.add_parser("prepare", help="validate a FASTA and write it bgzip-compressed with .fai/.gzi")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--fasta", help="input FASTA: plain, gzip or bgzip")
    source.add_argument(
        "--demo", choices=["human", "ecoli"], help="an embedded genome: the human chr6p21 HLA region or E. coli K-12"
    )
    p.add_argument("--out", required=True, help="output .fa.gz (bgzip); parent folders are created")
    p.add_argument("--line-width", type=positive_int, default=80, metavar="N", help="bases per line in the output")
    add_threads(p, "bgzip compression threads")
    add_quiet(p)
    p.set_defaults(func=_prepare)

    p = sub.add_parser("split", help="write the train/valid/test split BED (Basenji format)")
    p.add_argument("--fasta", required=True, help="genome FASTA (plain, bgzip, or gzip converted once to bgzip)")
    p.add_argument(
        "--config",
        help="config name (dna/hnet_1stage_tiny) or YAML path for the data section "
        "(default: the built-in data settings)",
    )
    p.add_argument(
        "--intervals", help="BED with a split column, plain or gzip; default: held-out chromosomes or fractions"
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="config override, e.g. data.test_fraction=0.2 (repeatable)",
    )
    p.add_argument("--out", required=True, help="split BED to write; parent folders are created")
    p.set_defaults(func=_split)

    p = sub.add_parser("sizes", help="write a chrom.sizes file (name<TAB>length)")
    p.add_argument("--fasta", required=True, help="genome FASTA (plain, bgzip, or gzip converted once to bgzip)")
    p.add_argument("--out", required=True, help="chrom.sizes file to write; parent folders are created")
    p.set_defaults(func=_sizes)
