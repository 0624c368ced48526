"""`hnet-genomics pretrain` and `hnet-genomics eval`."""

from __future__ import annotations

import argparse
from pathlib import Path

from hnet_genomics.devices import DEVICE_HELP, PRECISION_HELP
from hnet_genomics.options import (
    add_quiet,
    add_threads,
    apply_threads,
    check_input_file,
    nonnegative_int,
    positive_int,
    show_progress,
)
from hnet_genomics.outputs import check_paths, output_file, output_folder

# What pretrain writes into --out (checkpoints/ and model/ are written or replaced whole).
RUN_FILES = ("metrics.json", "curves.png", "config.yaml", "logs/metrics.csv", "logs/hparams.yaml")
RUN_FOLDERS = ("model", "checkpoints")


def _pretrain(args: argparse.Namespace) -> int:
    from hnet_genomics.config import load_config
    from hnet_genomics.training.pretrain import check_run_dir, run_pretrain

    overrides = list(args.set)
    for flag, key in (
        ("max_steps", "train.max_steps"),
        ("seq_len", "train.seq_len"),
        ("batch_size", "train.batch_size"),
    ):
        value = getattr(args, flag)
        if value is not None:
            overrides.append(f"{key}={value}")
    if args.batch_size is not None:
        overrides.append("train.tokens_per_batch=null")  # an explicit batch size wins over the token budget
    config = load_config(args.config, overrides)
    check_input_file(args.fasta, "--fasta")
    if args.intervals:
        check_input_file(args.intervals, "--intervals")
    # --config is not among the inputs: it is read whole before anything is written, and resuming with the
    # run's own config.yaml (rewritten with the same settings) is how a run is continued.
    check_paths(
        {"--fasta": args.fasta, "--intervals": args.intervals},
        [output_folder(args.out, files=RUN_FILES, folders=RUN_FOLDERS)],
    )
    check_run_dir(Path(args.out), args.resume)
    apply_threads(args.threads, args.quiet)
    metrics = run_pretrain(
        config,
        args.fasta,
        args.out,
        intervals=args.intervals,
        resume=args.resume,
        progress=show_progress(args.quiet),
        quiet=args.quiet,
    )
    if metrics is not None:
        ratios = ", ".join(f"{r:.2f}" for r in metrics["compression_ratios"]) or "none (isotropic)"
        print(
            f"val bpb {metrics['val_bpb']:.4f} | compression {ratios} | {metrics['bases_seen']:,} bases seen "
            f"| {metrics['bases_per_second']:,.0f} bases/s | model: {Path(args.out) / 'model'}"
        )
    return 0


def _eval(args: argparse.Namespace) -> int:
    from hnet_genomics.config import DataConfig, load_config
    from hnet_genomics.errors import ConfigError

    if args.baseline is None and not args.model:
        raise ConfigError("eval needs --model DIR or --baseline markov")
    if args.baseline is not None and args.model:
        raise ConfigError("eval takes --model DIR or --baseline markov, not both")
    check_input_file(args.fasta, "--fasta")
    if args.intervals:
        check_input_file(args.intervals, "--intervals")
    if args.out:
        check_paths(
            {
                "--model": _model_reads(args.model) if args.model else None,
                "--fasta": args.fasta,
                "--intervals": args.intervals,
                "--config": args.config if args.config and Path(args.config).is_file() else None,
            },
            [output_file(args.out)],
        )
    if args.seq_len is not None and args.seq_len < 2:
        raise ConfigError(f"--seq-len must be at least 2, got {args.seq_len}")
    apply_threads(args.threads, args.quiet)
    if args.baseline == "markov":
        from hnet_genomics.training.markov import markov_eval

        data_cfg = load_config(args.config).data if args.config else DataConfig()
        result = markov_eval(
            args.fasta, args.intervals, data_cfg, args.order, split=args.split, progress=show_progress(args.quiet)
        )
    else:
        result = _eval_model(args)
    if args.out:
        from hnet_genomics.atomic import write_json_atomic

        write_json_atomic(args.out, result)
    print(f"{result['model']} on {result['split']}: {result['bpb']:.4f} bits per base over {result['bases']:,} bases")
    return 0


def _model_reads(model: str) -> list[Path]:
    """What ``eval --model`` reads: the model folder (a run's ``model/`` or the folder itself) and the run's
    ``config.yaml`` (its data policy and window length)."""
    d = Path(model)
    model_dir = d / "model" if (d / "model" / "config.json").exists() else d
    return [model_dir, d / "config.yaml", d.parent / "config.yaml"]


def _eval_model(args: argparse.Namespace) -> dict:
    from hnet_genomics.config import load_config
    from hnet_genomics.data.intervals import make_splits
    from hnet_genomics.devices import resolve_device, resolve_precision
    from hnet_genomics.errors import ConfigError
    from hnet_genomics.kernels import dispatch
    from hnet_genomics.model.lm import HNetLM
    from hnet_genomics.training.evaluate import evaluate_bpb
    from hnet_genomics.training.sources import open_source

    model_dir = Path(args.model)
    if not model_dir.is_dir():
        raise ConfigError(f"--model {model_dir}: no such folder")
    model = HNetLM.from_pretrained(model_dir / "model" if (model_dir / "model" / "config.json").exists() else model_dir)
    run_cfgs = [p for p in (model_dir / "config.yaml", model_dir.parent / "config.yaml") if p.exists()]
    if args.config:
        config, rule = load_config(args.config), f"--config {args.config}"
    elif run_cfgs:  # the pretraining run's own data policy and window length
        config, rule = load_config(run_cfgs[0]), str(run_cfgs[0])
    else:  # only the data policy and window length are used
        config, rule = load_config("dna/hnet_1stage_tiny"), "the default split settings"
    seq_len = args.seq_len or config.train.seq_len
    source = open_source(args.fasta, config.data)
    splits = make_splits(source, config.data, args.intervals)
    if not splits.get(args.split):
        bed = args.intervals or config.data.intervals
        where = f"{bed} has no '{args.split}' interval" if bed else f"{args.fasta} has no {args.split} part by {rule}"
        held = ", ".join(k for k, v in splits.items() if v)
        raise ConfigError(f"--split {args.split}: {where} (splits with intervals: {held})")
    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)
    dispatch.report(device, "eval")
    r = evaluate_bpb(
        model,
        source,
        splits[args.split],
        seq_len,
        config.data,
        batch_size=args.batch_size,
        device=device,
        progress=show_progress(args.quiet),
        precision=precision,
    )
    return {
        "model": str(model_dir),
        "split": args.split,
        "bpb": r["bpb"],
        "bases": r["bases_scored"],
        "windows": r["windows"],
        "seq_len": seq_len,
        "compression_ratios": r["compression_ratios"],
        "device": device,
        "precision": precision,
    }


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "pretrain",
        help="pretrain an H-Net or baseline language model on a genome",
        description="Train a model on a genome's train split, validate on its valid split, and write OUT/model/ "
        "(the best validation step), OUT/metrics.json, OUT/curves.png and resumable checkpoints. OUT "
        "must be new, empty or an earlier pretrain run (with --resume); anything else is refused.",
    )
    p.add_argument("--config", required=True, help="shipped config name (dna/hnet_1stage_tiny) or YAML path")
    p.add_argument(
        "--fasta",
        required=True,
        help="genome FASTA: plain text or bgzip (indexed on first use if no .fai/.gzi is beside it), or "
        "plain gzip as UCSC and Ensembl serve it (converted once to a bgzip copy beside it)",
    )
    p.add_argument(
        "--intervals",
        help="BED with a split column (chrom start end train|valid|test), plain or gzip; "
        "default: the config's split rule",
    )
    p.add_argument("--out", required=True, help="run folder (created with its parents if missing)")
    p.add_argument("--max-steps", type=positive_int, metavar="N", help="optimizer steps (default: the config's)")
    p.add_argument(
        "--seq-len", type=positive_int, metavar="N", help="bases per training window (default: the config's)"
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        metavar="N",
        help="windows per step (default: the config's; overrides train.tokens_per_batch)",
    )
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.ckpt")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set train.lr=1e-3 (repeatable)",
    )
    add_threads(p)
    add_quiet(p)
    p.set_defaults(func=_pretrain)

    e = subparsers.add_parser(
        "eval",
        help="held-out bits per base of a model, or of an order-K Markov baseline",
        description="Bits per base of a saved model (or an order-K Markov model fitted on the train split) on "
        "one split of a genome, over windows that tile the split exactly once.",
    )
    e.add_argument("--model", help="pretraining output folder or saved model folder")
    e.add_argument("--baseline", choices=["markov"], help="evaluate a classical reference instead of a model")
    e.add_argument(
        "--order",
        type=nonnegative_int,
        default=10,
        metavar="K",
        help="Markov order K, 0 to 13 (with --baseline markov)",
    )
    e.add_argument("--fasta", required=True, help="genome FASTA (plain, bgzip, or gzip converted once to bgzip)")
    e.add_argument("--intervals", help="BED with a split column, plain or gzip; default: the config's split rule")
    e.add_argument("--split", default="test", choices=["train", "valid", "test"], help="split to score")
    e.add_argument("--config", help="config whose data/split settings apply (default: the run's own)")
    e.add_argument(
        "--seq-len", type=positive_int, metavar="N", help="evaluation window length (default: the training length)"
    )
    e.add_argument("--batch-size", type=positive_int, default=8, metavar="N", help="windows per forward pass")
    e.add_argument("--device", default="auto", help=DEVICE_HELP)
    e.add_argument("--precision", default="auto", help=PRECISION_HELP)
    e.add_argument("--out", help="write the result as JSON here (parent folders are created)")
    add_threads(e)
    add_quiet(e)
    e.set_defaults(func=_eval)
