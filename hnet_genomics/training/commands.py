"""`hnet-genomics pretrain` and `hnet-genomics eval`."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from hnet_genomics.devices import DEVICE_HELP, PRECISION_HELP
from hnet_genomics.options import (
    MODEL_HELP,
    add_quiet,
    add_threads,
    apply_threads,
    check_input_file,
    check_input_file_or_dir,
    nonnegative_int,
    positive_int,
    show_progress,
)
from hnet_genomics.outputs import check_paths, output_file, output_folder

# What pretrain writes into --out (checkpoints/ and model/ are written or replaced whole).
RUN_FILES = ("metrics.json", "curves.png", "config.yaml", "logs/metrics.csv", "logs/hparams.yaml")
RUN_FOLDERS = ("model", "checkpoints")

TEXT_HELP = (
    "text corpus, for a text config (data.kind: text): a UTF-8 file, or a folder whose non-hidden files are "
    "the records; read as raw bytes"
)


def _input(args: argparse.Namespace) -> tuple[str, str, str]:
    """(path, data kind, option) of the sequence input: a genome (--fasta) or a text corpus (--text)."""
    if getattr(args, "text", None) is not None:
        return args.text, "text", "--text"
    return args.fasta, "dna", "--fasta"


def check_input_kind(option: str, kind: str, config_kind: str, origin: str) -> None:
    """A genome goes to a DNA config, a text corpus to a text one: DNA policies (upper-casing, IUPAC checks,
    reverse complements) would corrupt text, and a genome read as text would skip them."""
    if kind == config_kind:
        return
    from hnet_genomics.errors import ConfigError

    fix = "pass the corpus with --text" if config_kind == "text" else "pass the genome with --fasta"
    other = "a text config (e.g. text/hnet_1stage_bytes)" if kind == "text" else "a DNA config"
    raise ConfigError(
        f"{option}: {origin} reads {'text' if config_kind == 'text' else 'DNA'} (data.kind: {config_kind}); "
        f"{fix}, or use {other}"
    )


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
    source, kind, option = _input(args)
    check_input_kind(option, kind, config.data.kind, f"config {args.config}")
    (check_input_file_or_dir if kind == "text" else check_input_file)(source, option)
    if args.intervals:
        check_input_file(args.intervals, "--intervals")
    # --config is not among the inputs: it is read whole before anything is written, and resuming with the
    # run's own config.yaml (rewritten with the same settings) is how a run is continued.
    check_paths(
        {"--fasta": args.fasta, "--text": args.text, "--intervals": args.intervals},
        [output_folder(args.out, files=RUN_FILES, folders=RUN_FOLDERS)],
    )
    check_run_dir(Path(args.out), args.resume)
    apply_threads(args.threads, args.quiet)
    metrics = run_pretrain(
        config,
        source,
        args.out,
        intervals=args.intervals,
        resume=args.resume,
        progress=show_progress(args.quiet),
        quiet=args.quiet,
        command=shlex.join(["hnet-genomics", *args.argv]) if hasattr(args, "argv") else None,
    )
    if metrics is not None:
        ratios = ", ".join(f"{r:.2f}" for r in metrics["compression_ratios"]) or "none (isotropic)"
        unit = metrics["unit"]
        speed = metrics[f"{unit}s_per_second"]
        speed_text = (
            f"{speed:,.0f} {unit}s/s after {metrics['warmup_steps']} warm-up steps"
            if speed is not None
            else "no steps after the warm-up to time"
        )
        print(
            f"val bits per {unit} {metrics['val_bpb']:.4f} | compression {ratios} | "
            f"{metrics[f'{unit}s_seen']:,} {unit}s seen | {speed_text} | model: {Path(args.out) / 'model'}"
        )
    return 0


def _eval(args: argparse.Namespace) -> int:
    from hnet_genomics.config import DataConfig, load_config
    from hnet_genomics.errors import ConfigError

    if args.baseline is None and not args.model:
        raise ConfigError("eval needs --model DIR or --baseline markov")
    if args.baseline is not None and args.model:
        raise ConfigError("eval takes --model DIR or --baseline markov, not both")
    source, kind, option = _input(args)
    if args.baseline == "markov" and kind == "text":
        raise ConfigError("--baseline markov: the Markov reference models DNA bases; evaluate text with --model")
    (check_input_file_or_dir if kind == "text" else check_input_file)(source, option)
    if args.intervals:
        check_input_file(args.intervals, "--intervals")
    if args.out:
        check_paths(
            {
                "--model": _model_reads(args.model) if args.model else None,
                "--fasta": args.fasta,
                "--text": args.text,
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
    unit = result.get("unit", "base")
    print(
        f"{result['model']} on {result['split']}: {result['bpb']:.4f} bits per {unit} "
        f"over {result[f'{unit}s']:,} {unit}s"
    )
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
    from hnet_genomics.model.hub import model_folder
    from hnet_genomics.model.lm import HNetLM
    from hnet_genomics.training.evaluate import evaluate_bpb
    from hnet_genomics.training.sources import open_source

    model_dir = model_folder(args.model)
    model = HNetLM.from_pretrained(model_dir / "model" if (model_dir / "model" / "config.json").exists() else model_dir)
    run_cfgs = [p for p in (model_dir / "config.yaml", model_dir.parent / "config.yaml") if p.exists()]
    path, kind, option = _input(args)
    if args.config:
        config, origin = load_config(args.config), f"--config {args.config}"
    elif run_cfgs:  # the pretraining run's own data policy and window length
        config, origin = load_config(run_cfgs[0]), f"the model's run ({run_cfgs[0]})"
    else:  # only the data policy and window length are used
        default = "text/hnet_1stage_bytes" if kind == "text" else "dna/hnet_1stage_tiny"
        config, origin = load_config(default), default
    check_input_kind(option, kind, config.data.kind, origin)
    seq_len = args.seq_len or config.train.seq_len
    source = open_source(path, config.data)
    splits = make_splits(source, config.data, args.intervals)
    if not splits.get(args.split):
        bed = args.intervals or config.data.intervals
        where = f"{bed} has no '{args.split}' interval" if bed else f"{path} has no {args.split} part by {origin}"
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
    unit = config.data.unit
    return {
        "model": str(model_dir) if Path(args.model).exists() else str(args.model),  # a Hub repo id as given
        "split": args.split,
        "unit": unit,
        "bpb": r["bpb"],
        f"{unit}s": r["bases_scored"],
        "windows": r["windows"],
        "seq_len": seq_len,
        "compression_ratios": r["compression_ratios"],
        "device": device,
        "precision": precision,
    }


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "pretrain",
        help="pretrain an H-Net or baseline language model on a genome (or a text corpus)",
        description="Train a model on a genome's train split, validate on its valid split, and write OUT/model/ "
        "(the best validation step), OUT/metrics.json, OUT/curves.png and resumable checkpoints. OUT "
        "must be new, empty or an earlier pretrain run (with --resume); anything else is refused. "
        "A text config (data.kind: text) trains on --text instead and reports bits per byte.",
    )
    p.add_argument("--config", required=True, help="shipped config name (dna/hnet_1stage_tiny) or YAML path")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--fasta",
        help="genome FASTA: plain text or bgzip (indexed on first use if no .fai/.gzi is beside it), or "
        "plain gzip as UCSC and Ensembl serve it (converted once to a bgzip copy beside it)",
    )
    source.add_argument("--text", help=TEXT_HELP)
    p.add_argument(
        "--intervals",
        help="BED with a split column (chrom start end train|valid|test), plain or gzip; "
        "default: the config's split rule",
    )
    p.add_argument("--out", required=True, help="run folder (created with its parents if missing)")
    p.add_argument("--max-steps", type=positive_int, metavar="N", help="optimizer steps (default: the config's)")
    p.add_argument(
        "--seq-len",
        type=positive_int,
        metavar="N",
        help="bases (bytes of text) per training window (default: the config's)",
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
        "one split of a genome, over windows that tile the split exactly once; bits per byte of a text "
        "model on one split of a text corpus (--text).",
    )
    e.add_argument("--model", help="pretraining output folder, or " + MODEL_HELP)
    e.add_argument("--baseline", choices=["markov"], help="evaluate a classical reference instead of a model")
    e.add_argument(
        "--order",
        type=nonnegative_int,
        default=10,
        metavar="K",
        help="Markov order K, 0 to 13 (with --baseline markov)",
    )
    source = e.add_mutually_exclusive_group(required=True)
    source.add_argument("--fasta", help="genome FASTA (plain, bgzip, or gzip converted once to bgzip)")
    source.add_argument("--text", help=TEXT_HELP)
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
