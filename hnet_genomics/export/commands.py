"""``hnet-genomics boundaries`` (learned chunks as browser tracks) and ``hnet-genomics enrichment``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from hnet_genomics.devices import DEVICE_HELP, PRECISION_HELP, resolve_device, resolve_precision
from hnet_genomics.errors import ConfigError
from hnet_genomics.options import (
    MODEL_HELP,
    add_quiet,
    add_threads,
    apply_threads,
    check_input_file,
    nonnegative_int,
    positive_int,
    show_progress,
)
from hnet_genomics.outputs import check_paths, output_folder, output_prefix

ENRICHMENT_FILES = ("summary.json", "enrichment.tsv", "chunk_lengths.tsv", "edge_profile.tsv", "edge_density.png")


def register(sub: argparse._SubParsersAction) -> None:
    from hnet_genomics.export.windows import DEFAULT_OVERLAP, DEFAULT_WINDOW

    p = sub.add_parser(
        "boundaries",
        help="export a model's chunk boundaries as BED/bedGraph/bigWig/bigBed/tabix tracks",
        description="Run an H-Net over whole FASTA records (or the intervals of --regions) in overlapping "
        "windows and write, per chunking stage, the chunks (BED9, tiling every region exactly) and "
        "the per-base boundary probability. Each base takes its decision from the window in which "
        "it has the most left context (at least --overlap bases past a region's first --overlap).",
    )
    p.add_argument("--model", type=Path, required=True, help=MODEL_HELP)
    p.add_argument(
        "--fasta",
        type=Path,
        required=True,
        help="genome FASTA: plain or bgzip (indexed on first use), or plain gzip (converted once to a "
        "bgzip copy beside it)",
    )
    p.add_argument("--regions", type=Path, help="BED of intervals to export, plain or gzip (default: every record)")
    p.add_argument(
        "--out",
        required=True,
        help="output prefix: PREFIX.stage1.bed, PREFIX.chrom.sizes, ... (its folder is created if "
        "missing); files an earlier run wrote at this prefix and this one does not are removed",
    )
    p.add_argument(
        "--window",
        type=positive_int,
        help=f"bases per model window (default: the window length the model was "
        f"trained on, or {DEFAULT_WINDOW} if it did not record one)",
    )
    p.add_argument(
        "--overlap",
        type=nonnegative_int,
        help=f"left context every decision gets beyond a region's start (default: a quarter of the "
        f"window, {DEFAULT_OVERLAP} for {DEFAULT_WINDOW}); more overlap, fewer grid-dependent "
        f"decisions, more compute: window / (window - overlap)",
    )
    p.add_argument(
        "--formats",
        default="bed,bedgraph,bigwig,bigbed,tabix",
        help="comma list of bed,bedgraph,bigwig,bigbed,tabix (default: all)",
    )
    p.add_argument("--batch-size", type=positive_int, default=16, metavar="N", help="windows per forward pass")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--precision", default="auto", help=PRECISION_HELP)
    add_threads(p, "torch CPU threads, and bgzip threads for the tabix track")
    add_quiet(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bar; the summary is still printed")
    p.add_argument(
        "--shard",
        metavar="K/N",
        help="export only the K-th of N length-balanced groups of whole regions (one job of a job "
        "array); join the N outputs with `merge-tracks`, which then equal an unsharded run's",
    )
    p.set_defaults(func=run_boundaries)

    m = sub.add_parser(
        "merge-tracks",
        help="join the tracks of `boundaries --shard K/N` (or `likelihood --shard K/N`) jobs",
        description="Concatenate the chunk BED and probability bedGraph of every shard (in genome order, "
        "whatever the order given) and build the requested formats, as one unsharded `boundaries` "
        "run would have. Shards must be exported with at least --formats bed,bedgraph. Shards of "
        "`likelihood` (PREFIX.bits.*.bedGraph) are merged the same way into bedGraph and bigWig.",
    )
    m.add_argument(
        "--shards",
        nargs="+",
        required=True,
        metavar="PREFIX",
        help="the --out prefixes of all N shards of one export (`boundaries` or `likelihood` --shard K/N), any order",
    )
    m.add_argument("--out", required=True, help="output prefix of the merged tracks (its folder is created if missing)")
    m.add_argument(
        "--formats",
        help="comma list of bed,bedgraph,bigwig,bigbed,tabix for boundary tracks, bedgraph,bigwig for likelihood "
        "tracks (default: every format of the kind)",
    )
    m.add_argument(
        "--tracks",
        choices=("boundaries", "likelihood"),
        help="which tracks to merge when the shards hold both kinds (default: every kind the first shard holds)",
    )
    add_threads(m, "bgzip threads for the tabix track")
    add_quiet(m)
    m.set_defaults(func=run_merge_tracks)

    e = sub.add_parser(
        "enrichment",
        help="test whether chunk boundaries fall at annotated feature edges",
        description="Count boundaries (chunk starts from `boundaries`) within +-K bp of feature edges and "
        "compare with boundaries shuffled uniformly within the same regions (exact hypergeometric "
        "sampling of the shuffle null, permutation p-value); also compares chunk lengths inside vs "
        "outside features and plots boundary density around 5' and 3' edges.",
    )
    e.add_argument(
        "--boundaries",
        type=Path,
        required=True,
        help="chunk BED written by `boundaries` (PREFIX.stage1.bed, or its tabix PREFIX.stage1.bed.gz)",
    )
    e.add_argument("--annotation", type=Path, required=True, help="feature BED (exons, genes, ...), plain or gzip")
    e.add_argument("--out", type=Path, required=True, help="output folder (created with its parents if missing)")
    e.add_argument(
        "--flank",
        default="0,5,10,25",
        help="comma list of K: a boundary counts if within +-K bp of an edge (default 0,5,10,25)",
    )
    e.add_argument(
        "--edges",
        choices=("both", "5prime", "3prime"),
        default="both",
        help="which feature edges (strand-aware; 5prime of genes = gene starts)",
    )
    e.add_argument(
        "--permutations",
        type=positive_int,
        default=10000,
        metavar="N",
        help="draws from the shuffle null for the p-values",
    )
    e.add_argument(
        "--profile-width", type=positive_int, default=100, metavar="BP", help="half-width of the density plot in bp"
    )
    e.add_argument("--seed", type=nonnegative_int, default=0, help="random seed of the shuffle null")
    e.set_defaults(func=run_enrichment)


def default_window(trained: int | None, window: int | None, overlap: int | None) -> tuple[int, int]:
    """Window = the training length unless given; overlap = a quarter of it. Longer windows than the model
    saw in training are allowed but warned about: there its decisions drift (boundary_export benchmark)."""
    from hnet_genomics.export.windows import DEFAULT_WINDOW, check_window

    window = window if window is not None else trained or DEFAULT_WINDOW
    overlap = overlap if overlap is not None else window // 4
    check_window(window, overlap)
    if trained is not None and window > trained:
        print(
            f"warning: --window {window} is longer than the {trained}-base windows the model was trained on; "
            f"positions past {trained} are out of distribution and their boundaries less reliable",
            file=sys.stderr,
        )
    return window, overlap


def check_track_inputs(args: argparse.Namespace, tracks: str) -> tuple[int, int] | None:
    """What a genome-track export (``boundaries``, ``likelihood``) checks before loading anything: its
    --shard, --window/--overlap, input files, output prefix (never over an input) and the manifests already
    there. Returns the shard (k, n) or None."""
    from hnet_genomics.export.manifest import check_manifests, prefix_names
    from hnet_genomics.export.shards import parse_shard
    from hnet_genomics.inference.windows import check_window
    from hnet_genomics.model.hub import model_folder
    from hnet_genomics.model.lm import check_saved_model

    shard = parse_shard(args.shard) if args.shard else None
    if args.window is not None and args.overlap is not None:
        check_window(args.window, args.overlap)
    check_input_file(args.fasta, "--fasta")
    if args.regions is not None:
        check_input_file(args.regions, "--regions")
    args.model = check_saved_model(model_folder(args.model))  # a Hub repo id becomes its snapshot
    check_paths(
        {"--model": args.model, "--fasta": args.fasta, "--regions": args.regions},
        [output_prefix(args.out, names=prefix_names([tracks]))],
    )
    check_manifests(args.out)
    return shard


def track_regions(args: argparse.Namespace, window: int, overlap: int, shard: tuple[int, int] | None):
    """(genome, this job's regions, export identity) of a genome-track export; the identity covers the whole
    region set, so all shards of one export share it. Leftovers of a killed run at the prefix are swept."""
    from hnet_genomics.data.genome import Genome
    from hnet_genomics.export.manifest import export_identity, sweep_prefix
    from hnet_genomics.export.regions import read_regions, whole_records
    from hnet_genomics.export.shards import select_shard

    genome = Genome(args.fasta)
    regions = read_regions(args.regions, genome.sizes, args.fasta) if args.regions else whole_records(genome.sizes)
    identity = export_identity(args.model, genome.sizes, regions, window, overlap)
    if shard is not None:
        regions = select_shard(regions, *shard)
    sweep_prefix(args.out)
    return genome, regions, identity


def run_boundaries(args: argparse.Namespace) -> int:
    from hnet_genomics.export.boundaries import export_boundaries, require_chunking
    from hnet_genomics.export.manifest import finish_outputs
    from hnet_genomics.export.tracks import parse_formats
    from hnet_genomics.inference.engine import model_data_config
    from hnet_genomics.kernels import dispatch
    from hnet_genomics.model.hub import model_folder
    from hnet_genomics.model.lm import HNetLM

    formats = parse_formats(args.formats)
    shard = check_track_inputs(args, "boundaries")
    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)
    apply_threads(args.threads, args.quiet)
    args.model = model_folder(args.model)  # a Hub repo id becomes its snapshot in the cache
    model = HNetLM.from_pretrained(args.model)
    stages = require_chunking(model, str(args.model))
    if (note := model_data_config(model)[1]) and not args.quiet:
        print(f"note: {args.model}: {note}")
    window, overlap = default_window(model.trained_context, args.window, args.overlap)
    genome, regions, identity = track_regions(args, window, overlap, shard)
    dispatch.report(device, "boundaries")
    t0 = time.perf_counter()
    result = export_boundaries(
        model,
        genome,
        regions,
        args.out,
        formats,
        window,
        overlap,
        args.batch_size,
        device,
        progress=show_progress(args.quiet or args.no_progress),
        precision=precision,
    )
    dt = time.perf_counter() - t0
    manifest = finish_outputs(args.out, result.files, identity, stages, shard, _note)
    per_stage = ", ".join(
        f"stage{s + 1}: {n:,} chunks (mean {result.bases / max(n, 1):.2f} bp)" for s, n in enumerate(result.chunks)
    )
    where = f" (shard {shard[0]}/{shard[1]})" if shard else ""
    if not args.quiet:
        print(
            f"{result.bases:,} bp in {len(regions)} region(s){where}, {dt:.1f} s "
            f"({result.bases / max(dt, 1e-9) / 1e3:.1f} kb/s); {per_stage}"
        )
        for f in [*result.files, manifest]:
            print(f"wrote {f}")
    return 0


def _note(text: str) -> None:
    print(f"hnet-genomics: {text}", file=sys.stderr)


def run_merge_tracks(args: argparse.Namespace) -> int:
    from hnet_genomics.export.likelihood import merge_likelihood
    from hnet_genomics.export.manifest import (
        check_shard_set,
        finish_outputs,
        prefix_files,
        prefix_names,
        read_manifest,
        sweep_prefix,
        tracks_to_merge,
    )
    from hnet_genomics.export.shards import merge_tracks

    if any(Path(s).resolve() == Path(args.out).resolve() for s in args.shards):
        raise ConfigError(f"--out {args.out}: is one of the --shards; write the merge to another prefix")
    kinds = tracks_to_merge(args.shards, args.tracks)
    formats = merge_formats(args.formats, kinds)
    check_paths(
        {"--shards": [f for s in args.shards for f in prefix_files(s)]},
        [output_prefix(args.out, names=prefix_names(kinds))],
    )
    for kind in kinds:
        check_shard_set(args.shards, kind)
    apply_threads(args.threads, args.quiet)
    sweep_prefix(args.out)
    written: list[Path] = []
    for kind in kinds:
        first = read_manifest(args.shards[0], kind)
        assert first is not None  # check_shard_set refused a shard without a manifest
        merge = merge_likelihood if kind == "likelihood" else merge_tracks
        files = merge(args.shards, args.out, formats[kind])
        files.append(finish_outputs(args.out, files, first["export"], first["stages"], None, _note, kind))
        written += files
    if not args.quiet:
        for f in written:
            print(f"wrote {f}")
    return 0


def merge_formats(text: str | None, kinds: list[str]) -> dict[str, tuple[str, ...]]:
    """--formats of merge-tracks for each kind of tracks merged: every format of the kind by default; a format
    no merged kind can be written as, or a kind left with none, is a user error."""
    from hnet_genomics.export import likelihood, tracks

    known = {"boundaries": tracks.FORMATS, "likelihood": likelihood.FORMATS}
    if text is None:
        return {k: known[k] for k in kinds}
    asked = tracks.parse_formats(text)
    for f in asked:
        if not any(f in known[k] for k in kinds):
            raise ConfigError(
                f"--formats: '{f}' is not a format of {' or '.join(kinds)} tracks "
                f"(choose from {','.join(dict.fromkeys(x for k in kinds for x in known[k]))})"
            )
    chosen = {k: tuple(f for f in asked if f in known[k]) for k in kinds}
    for k, fs in chosen.items():
        if not fs:
            raise ConfigError(f"--formats {text}: none of them is a format of {k} tracks ({','.join(known[k])})")
    return chosen


def run_enrichment(args: argparse.Namespace) -> int:
    from hnet_genomics.export.enrichment import run_enrichment as enrich

    try:
        flanks = [int(k) for k in args.flank.split(",") if k.strip()]
    except ValueError:
        raise ConfigError(f"--flank expects comma-separated integers, got '{args.flank}'") from None
    if not flanks or min(flanks) < 0:
        raise ConfigError(f"--flank needs at least one value, all >= 0, got '{args.flank}'")
    check_input_file(args.boundaries, "--boundaries")
    check_input_file(args.annotation, "--annotation")
    check_paths(
        {"--boundaries": args.boundaries, "--annotation": args.annotation},
        [output_folder(args.out, files=ENRICHMENT_FILES)],
    )
    summary = enrich(
        args.boundaries, args.annotation, args.out, flanks, args.edges, args.permutations, args.profile_width, args.seed
    )
    for r in summary["enrichment"]:
        print(
            f"+-{r['flank']} bp of {r['edges']} edges: {r['observed']:,} of {r['n_boundaries']:,} boundaries "
            f"(expected {r['expected']:.1f} if shuffled), ratio {r['ratio']:.3f}, "
            f"p_enrichment {r['p_enrichment']:.3g}, p_depletion {r['p_depletion']:.3g}"
        )
    ln = summary["chunk_lengths"]
    if "mann_whitney_p" in ln:
        print(
            f"chunk length median inside features {ln['inside']['median_bp']:g} bp vs outside "
            f"{ln['outside']['median_bp']:g} bp (Mann-Whitney p {ln['mann_whitney_p']:.3g})"
        )
    print(f"wrote {Path(args.out)}/{{summary.json,enrichment.tsv,chunk_lengths.tsv,edge_profile.tsv,edge_density.png}}")
    return 0
