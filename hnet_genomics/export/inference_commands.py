"""``hnet-genomics score-variants``, ``ism``, ``likelihood`` and ``embed``: a trained model read out over sequence.

All four run on the one inference engine (``inference/engine.py``) and share its options: ``--device``,
``--precision``, ``--batch-size``, ``--threads``, ``--quiet``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from hnet_genomics.atomic import output_dir
from hnet_genomics.devices import DEVICE_HELP, PRECISION_HELP, resolve_device, resolve_precision
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
from hnet_genomics.outputs import check_paths, output_file, output_prefix


def _add_engine_options(p: argparse.ArgumentParser, batch_size: int) -> None:
    p.add_argument("--batch-size", type=positive_int, default=batch_size, metavar="N", help="windows per forward pass")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--precision", default="auto", help=PRECISION_HELP)
    add_threads(p)
    add_quiet(p)


def _add_window_options(p: argparse.ArgumentParser, overlap: bool = True) -> None:
    from hnet_genomics.inference.windows import DEFAULT_WINDOW

    p.add_argument(
        "--window",
        type=positive_int,
        metavar="N",
        help=f"bases per model window (default: the window length the model was "
        f"trained on, or {DEFAULT_WINDOW} if it did not record one)",
    )
    if overlap:
        p.add_argument(
            "--overlap",
            type=nonnegative_int,
            metavar="N",
            help="left context every base gets beyond a region's start when "
            "windows are stitched (default: a quarter of the window)",
        )


def register(sub: argparse._SubParsersAction) -> None:
    v = sub.add_parser(
        "score-variants",
        help="zero-shot variant effects: log-likelihood ratio of ALT vs REF for every VCF allele",
        description="Score every ALT allele (multi-allelic records split) that is an SNV, MNV or indel of at most "
        "--max-len bases: HNET_LLR = ln P(ALT window) - ln P(REF window) in nats (negative: ALT less likely "
        "under the model). Each allele is reduced to its footprint, the reference bases it changes (shared "
        "anchor bases trimmed; an indel in a repeat spans every place it could sit), and scored in a window "
        "of reference bases holding at least a flank of bases on each side of it, whose ends lie on a grid "
        "that the reverse complement maps onto itself (--grid): the mirrored variant on the reverse-"
        "complemented genome gets exactly the mirrored window. Alleles sharing a window share its "
        "computation: the part before them runs once and every allele continues from the model state it "
        "leaves. The model is causal: only terms from the first base where the windows differ are summed. "
        "Bases that are not A, C, G or T contribute nothing. --strand both (default) averages with the "
        "same score on the reverse-complemented windows (HNET_LLR_FWD / HNET_LLR_REV are written too); an "
        "allele at a contig end that one strand cannot score gets the other's (HNET_STATUS scored_fwd / "
        "scored_rev). HNET_LLR_FLANK keeps only the terms of the bases after the footprint, the same number "
        "for both alleles: an indel's total LLR also holds the likelihood of the bases it adds or removes, "
        "its flank LLR does not. H-Nets also get HNET_BSHIFT: stage-1 chunk boundaries the allele moves "
        "within --bshift-flank bp, summed over strands. REF is checked against the FASTA (mismatches: "
        "FILTER=REF_MISMATCH, not scored; --strict makes them an error); symbolic alleles, '*', N, longer "
        "events and records with POS 0 are skipped with their reason in HNET_STATUS. Output: OUT.vcf.gz "
        "(bgzipped, tabix-indexed, every input record and header line kept; earlier HNET_* fields are "
        "replaced) and OUT.tsv (one line per ALT allele with its status, footprint and window).",
    )
    v.add_argument("--model", type=Path, required=True, help=MODEL_HELP)
    v.add_argument("--fasta", type=Path, required=True, help="reference FASTA the VCF was called against")
    v.add_argument("--vcf", type=Path, required=True, help="input VCF, VCF.gz or BCF (sorted)")
    v.add_argument("--out", required=True, help="output OUT.vcf.gz (OUT.vcf.gz.tbi and OUT.tsv are written beside it)")
    _add_window_options(v, overlap=False)
    v.add_argument(
        "--strand",
        choices=("both", "fwd"),
        default="both",
        help="both: mean of the forward and reverse-complement scores (default); fwd: forward only",
    )
    v.add_argument(
        "--max-len",
        type=positive_int,
        default=50,
        metavar="BP",
        help="longest REF or ALT allele scored, in bases (also the longest footprint of an indel in a repeat)",
    )
    v.add_argument(
        "--bshift-flank",
        type=nonnegative_int,
        default=10,
        metavar="BP",
        help="HNET_BSHIFT counts boundaries moved within this many bp of the allele",
    )
    v.add_argument(
        "--grid",
        type=positive_int,
        metavar="N",
        help="odd spacing of the grid window ends lie on; 1: every window is the footprint with exactly equal "
        "flanks (no sharing between nearby alleles) (default: an odd number near window / 11, 93 for 1,024)",
    )
    v.add_argument("--strict", action="store_true", help="a REF that does not match the FASTA is an error")
    _add_engine_options(v, 32)
    v.set_defaults(func=run_score_variants)

    m = sub.add_parser(
        "ism",
        help="in-silico saturation mutagenesis: every base of a region to the three others, scored on both strands",
        description="Change every base of --region to each of the three other bases and score each change as "
        "score-variants scores an SNV (ln P(ALT window) - ln P(REF window) in nats, the same windows, by "
        "default the mean of both strands): negative means the model finds the changed sequence less "
        "likely. Changes that share a window share its computation (the part before them runs once), so "
        "a region costs about one model window per change. Writes PREFIX.ism.npy (float32, 4 x L, rows A, C, "
        "G, T; NaN on the reference base), PREFIX.ism.tsv (one line per base), PREFIX.ism.mean.bw and "
        "PREFIX.ism.min.bw (mean and most negative LLR per base, for a genome browser) and, for regions of "
        "at most --logo-max bases, PREFIX.ism.png (the sequence as letters scaled by minus the mean LLR, "
        "above the matrix). Scores are not calibrated: compare positions within a region.",
    )
    m.add_argument("--model", type=Path, required=True, help="model directory (written by save_pretrained)")
    m.add_argument("--fasta", type=Path, required=True, help="genome FASTA (plain or bgzip, with/without .fai)")
    m.add_argument(
        "--region", required=True, help="chrom:start-end, 1-based and inclusive (as samtools and IGV write them)"
    )
    m.add_argument("--out", required=True, help="output prefix: PREFIX.ism.npy, PREFIX.ism.tsv, ...")
    _add_window_options(m, overlap=False)
    m.add_argument(
        "--grid",
        type=positive_int,
        metavar="N",
        help="odd spacing of the window grid, as for score-variants (default: near window / 11, 93 for 1,024)",
    )
    m.add_argument(
        "--strand",
        choices=("both", "fwd"),
        default="both",
        help="both: mean of the forward and reverse-complement scores (default); fwd: forward only",
    )
    m.add_argument(
        "--logo-max", type=nonnegative_int, default=200, metavar="BP", help="draw PREFIX.ism.png for regions up to this"
    )
    _add_engine_options(m, 32)
    m.set_defaults(func=run_ism)

    lk = sub.add_parser(
        "likelihood",
        help="per-base surprisal (bits) along a genome as bigWig / bedGraph tracks",
        description="Run a model over whole FASTA records (or the intervals of --regions) in overlapping windows "
        "and write, per base, the model's surprisal -log2 p(base | bases to its left) in bits: "
        "PREFIX.bits.fwd.{bw,bedGraph}. Each base takes its value from the window in which it has the "
        "most left context, as in `boundaries`. --strand both adds the reverse strand (the surprisal "
        "of the complement given the bases to its right, PREFIX.bits.rev.*) and their mean "
        "(PREFIX.bits.mean.*). A region's first base has no forward value, N bases none at all. "
        "--shard K/N and `merge-tracks` split a genome over jobs as for `boundaries`.",
    )
    lk.add_argument("--model", type=Path, required=True, help=MODEL_HELP)
    lk.add_argument("--fasta", type=Path, required=True, help="genome FASTA (plain or bgzip, with/without .fai)")
    lk.add_argument("--regions", type=Path, help="BED of intervals (default: every record)")
    lk.add_argument("--out", required=True, help="output prefix: PREFIX.bits.fwd.bw, PREFIX.chrom.sizes, ...")
    lk.add_argument(
        "--strand",
        choices=("fwd", "both"),
        default="fwd",
        help="fwd: surprisal given the left context (default); both: also the reverse strand and the mean",
    )
    lk.add_argument("--formats", default="bedgraph,bigwig", help="comma list of bedgraph,bigwig (default: both)")
    lk.add_argument(
        "--shard",
        metavar="K/N",
        help="only the K-th of N length-balanced groups of whole regions; join the outputs with `merge-tracks`",
    )
    _add_window_options(lk)
    _add_engine_options(lk, 16)
    lk.set_defaults(func=run_likelihood)

    e = sub.add_parser(
        "embed",
        help="per-sequence (and per-chunk) embeddings to .npy + index TSV, or Parquet",
        description="Embed every sequence of --input: a FASTA (each record), a CSV/TSV with a 'sequence' column "
        "(optional 'name', 'label') or a BED with --fasta (each line). --stage 0 is the base level "
        "(final hidden states); --stage s >= 1 the stage-s chunks of an H-Net (the output of the network "
        "that runs on them). --pooling mean averages over bases (a chunk stage weighs each chunk by its "
        "length), chunk over the stage's chunks, last takes the last base. Sequences longer than "
        "--window are tiled and stitched like the boundary tracks. --per-chunk also writes every chunk "
        "of the stage (stage 1 when --stage is 0) with its coordinates. A BED line with '-' in column 6 is "
        "embedded as its reverse complement (its chunks 5' to 3' on that strand); --rc-average averages "
        "every sequence's vector with its reverse complement's.",
    )
    e.add_argument("--model", type=Path, required=True, help=MODEL_HELP)
    e.add_argument("--input", type=Path, required=True, help="FASTA, CSV/TSV, or BED (with --fasta)")
    e.add_argument("--fasta", type=Path, help="genome FASTA for a BED --input")
    e.add_argument("--out", required=True, help="OUT.npy (+ OUT.tsv index) or OUT.parquet")
    e.add_argument("--pooling", choices=("mean", "chunk", "last"), default="mean", help="default mean")
    e.add_argument(
        "--stage",
        type=nonnegative_int,
        help="0 = bases (default for mean/last), 1.. = chunk stages (default 1 for chunk)",
    )
    e.add_argument("--per-chunk", action="store_true", help="also OUT.chunks.{npy,tsv|parquet}: every chunk")
    e.add_argument(
        "--rc-average",
        action="store_true",
        help="embed every sequence and its reverse complement and average the two vectors (strand-neutral)",
    )
    _add_window_options(e)
    _add_engine_options(e, 32)
    e.set_defaults(func=run_embed)


def _engine(args: argparse.Namespace):
    """Model on the resolved device and precision, inside the one inference engine."""
    from hnet_genomics.inference.engine import InferenceEngine
    from hnet_genomics.kernels import dispatch
    from hnet_genomics.model.hub import model_folder
    from hnet_genomics.model.lm import HNetLM

    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)
    apply_threads(args.threads, args.quiet)
    args.model = model_folder(args.model)  # a Hub repo id becomes its snapshot in the cache
    model = HNetLM.from_pretrained(args.model)
    dispatch.report(device, args.command)
    engine = InferenceEngine(model, device, precision, args.batch_size)
    if engine.encoding_note:
        _say(args, f"note: {args.model}: {engine.encoding_note}")
    return engine


def _window(engine, args: argparse.Namespace) -> tuple[int, int]:
    from hnet_genomics.export.commands import default_window

    return default_window(engine.model.trained_context, args.window, getattr(args, "overlap", None))


def _progress(args: argparse.Namespace) -> bool:
    return show_progress(args.quiet)


def _say(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(text)


def run_score_variants(args: argparse.Namespace) -> int:
    from hnet_genomics.data.genome import Genome
    from hnet_genomics.export.variant_scores import model_identity, output_paths, score_vcf
    from hnet_genomics.inference.variants import VariantScoringConfig
    from hnet_genomics.model.hub import model_folder
    from hnet_genomics.model.lm import check_saved_model

    for option in ("fasta", "vcf"):
        check_input_file(getattr(args, option), f"--{option}")
    args.model = check_saved_model(model_folder(args.model))  # a Hub repo id becomes its snapshot
    vcf_out, *derived = output_paths(args.out)
    check_paths(
        {"--model": args.model, "--fasta": args.fasta, "--vcf": args.vcf}, [output_file(vcf_out, derived=derived)]
    )
    if args.window is not None:
        VariantScoringConfig(args.window, args.strand, args.max_len, args.bshift_flank, grid=args.grid).validate()
    engine = _engine(args)
    window = _window(engine, args)[0]
    cfg = VariantScoringConfig(window, args.strand, args.max_len, args.bshift_flank, args.strict, args.grid)
    cfg.validate()
    genome = Genome(args.fasta)
    identity = model_identity(args.model, engine.model)
    with output_dir(Path(args.out).parent):  # created with its parents, removed again if scoring fails
        s = score_vcf(engine, genome, args.vcf, args.out, cfg, identity, progress=_progress(args), warn=_warn)
    if s.replaced_fields:
        _say(args, f"note: {args.vcf} was scored before: replaced its {', '.join(s.replaced_fields)} fields")
    skipped = ", ".join(f"{n:,} {r}" for r, n in s.skipped.most_common()) or "none"
    kinds = ", ".join(f"{n:,} {k}" for k, n in s.kinds.most_common())
    t = engine.timing
    _say(
        args,
        f"{s.records:,} records, {s.alleles:,} ALT alleles: {s.scored:,} scored ({kinds}; {s.one_strand:,} on one "
        f"strand, {s.clipped:,} in clipped windows); skipped: {skipped}; {s.ref_mismatch_records:,} record(s) "
        f"REF_MISMATCH",
    )
    per_variant = t.bases / cfg.layout().snv_window / max(s.scored, 1)
    _say(
        args,
        f"{s.seconds:.1f} s ({s.scored / max(s.seconds, 1e-9):.1f} variants/s), {t.bases:,} bases through the "
        f"model ({per_variant:.2f} windows per variant); model {t.model_s:.1f} s, sequence preparation "
        f"{t.prepare_s:.1f} s, VCF and the rest {max(s.seconds - t.model_s - t.prepare_s, 0):.1f} s",
    )
    for f in s.files:
        _say(args, f"wrote {f}")
    return 0


def _warn(text: str) -> None:
    print(f"hnet-genomics: warning: {text}", file=sys.stderr)


def run_ism(args: argparse.Namespace) -> int:
    import numpy as np

    from hnet_genomics.data.genome import Genome
    from hnet_genomics.export.ism import write_ism
    from hnet_genomics.inference.ism import parse_region, saturation_mutagenesis
    from hnet_genomics.inference.variants import VariantScoringConfig
    from hnet_genomics.model.hub import model_folder
    from hnet_genomics.model.lm import check_saved_model

    check_input_file(args.fasta, "--fasta")
    args.model = check_saved_model(model_folder(args.model))  # a Hub repo id becomes its snapshot
    check_paths(
        {"--model": args.model, "--fasta": args.fasta},
        [output_prefix(args.out, names=r"ism\.(?:npy|tsv|mean\.bw|min\.bw|png)")],
    )
    if args.window is not None:
        VariantScoringConfig(args.window, args.strand, 1, grid=args.grid).validate()
    genome = Genome(args.fasta)
    region = parse_region(args.region, genome.sizes)
    engine = _engine(args)
    cfg = VariantScoringConfig(_window(engine, args)[0], args.strand, 1, grid=args.grid)
    cfg.validate()
    t0 = time.perf_counter()
    result = saturation_mutagenesis(engine, genome, region, cfg, progress=_progress(args))
    with output_dir(Path(args.out).parent):
        files = write_ism(result, args.out, genome.sizes, args.logo_max, f"{args.region} ({Path(args.model).name})")
    dt, t = time.perf_counter() - t0, engine.timing
    changes = int((~np.isnan(result.llr)).sum())
    _say(
        args,
        f"{region.length:,} bp, {changes:,} changes scored in {dt:.1f} s ({changes / max(dt, 1e-9):.1f} per s), "
        f"{t.bases:,} bases through the model ({t.bases / cfg.layout().snv_window / max(changes, 1):.2f} windows "
        f"per change); most negative mean LLR {np.nanmin(result.mean()) if changes else float('nan'):.3f} nats",
    )
    for f in files:
        _say(args, f"wrote {f}")
    return 0


def run_likelihood(args: argparse.Namespace) -> int:
    from hnet_genomics.export.commands import _note, check_track_inputs, track_regions
    from hnet_genomics.export.likelihood import export_likelihood, parse_bits_formats
    from hnet_genomics.export.manifest import finish_outputs

    formats = parse_bits_formats(args.formats)
    shard = check_track_inputs(args, "likelihood")
    engine = _engine(args)
    window, overlap = _window(engine, args)
    genome, regions, identity = track_regions(args, window, overlap, shard)
    identity += f":{args.strand}"  # the strands exported are part of what a shard holds
    t0 = time.perf_counter()
    res = export_likelihood(
        engine, genome, regions, args.out, formats, window, overlap, args.strand, progress=_progress(args)
    )
    dt = time.perf_counter() - t0
    res.files.append(finish_outputs(args.out, res.files, identity, 0, shard, _note, "likelihood"))
    where = f" (shard {shard[0]}/{shard[1]})" if shard else ""
    means = ", ".join(f"{k} {v:.3f}" for k, v in res.mean_bits.items())
    _say(
        args,
        f"{res.bases:,} bp in {len(regions)} region(s){where}, {dt:.1f} s ({res.bases / dt / 1e3:.1f} kb/s); "
        f"mean bits per base: {means}",
    )
    for f in res.files:
        _say(args, f"wrote {f}")
    return 0


def run_embed(args: argparse.Namespace) -> int:
    from hnet_genomics.export.embeddings import derived_files, output_kind, read_embedding_input, write_embeddings
    from hnet_genomics.inference.embeddings import EmbeddingConfig, embed_stranded
    from hnet_genomics.inference.windows import check_window
    from hnet_genomics.model.hub import model_folder
    from hnet_genomics.model.lm import check_saved_model

    check_input_file(args.input, "--input")
    if args.fasta is not None:
        check_input_file(args.fasta, "--fasta")
    args.model = check_saved_model(model_folder(args.model))  # a Hub repo id becomes its snapshot
    output_kind(args.out)
    check_paths(
        {"--model": args.model, "--input": args.input, "--fasta": args.fasta},
        [output_file(args.out, derived=derived_files(args.out, args.per_chunk))],
    )
    if args.window is not None and args.overlap is not None:
        check_window(args.window, args.overlap)
    cfg = EmbeddingConfig(args.pooling, args.stage, args.per_chunk, args.rc_average)
    engine = _engine(args)
    cfg.resolved_stage(engine.model.config.num_stages)
    window, overlap = _window(engine, args)
    inp = read_embedding_input(args.input, args.fasta)
    t0 = time.perf_counter()
    strands = inp.strands or ["."] * len(inp.spans)
    items = embed_stranded(engine, inp.source, inp.spans, strands, cfg, window, overlap, progress=_progress(args))
    with output_dir(Path(args.out).parent):
        files = write_embeddings(items, inp, args.out)
    dt = time.perf_counter() - t0
    bases = sum(len(s) for s in inp.spans)
    _say(
        args,
        f"{len(items):,} sequence(s), {bases:,} bp, {dt:.1f} s; {items[0].vector.shape[0]}-dim "
        f"{cfg.pooling} embeddings of stage {cfg.resolved_stage(engine.model.config.num_stages)}",
    )
    for f in files:
        _say(args, f"wrote {f}")
    return 0
