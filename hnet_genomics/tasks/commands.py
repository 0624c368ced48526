"""``hnet-genomics finetune``: labelled sequences -> per-seed and mean ± std test metrics beside a k-mer baseline."""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

from hnet_genomics.devices import DEVICE_HELP, PRECISION_HELP, resolve_device, resolve_precision
from hnet_genomics.errors import ConfigError
from hnet_genomics.options import (add_quiet, add_threads, apply_threads, check_output_dir, nonnegative_float,
                                   open_fraction, positive_float, positive_int, show_progress)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "finetune", help="fine-tune a model (or run the k-mer baseline) on a labelled sequence task",
        description="Fine-tune a pretrained model (--model), a freshly initialised one (--config) and/or the "
                    "6-mer logistic-regression baseline (--baseline kmer) on a classification or regression "
                    "task. A validation split is carved from --train per seed; the best validation epoch is "
                    "tested once. Task files: CSV/TSV (sequence,label[,name]), FASTA with '>name|label' "
                    "headers (Nucleotide Transformer tasks), or a Genomic Benchmarks split directory.")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", type=Path, help="pretrained model directory (written by save_pretrained)")
    src.add_argument("--config", help="config name or YAML: train this architecture from scratch")
    p.add_argument("--train", type=Path, required=True,
                   help="training split (validation is carved from it): CSV/TSV (UTF-8, plain or gzip), FASTA or "
                        "a Genomic Benchmarks split folder")
    p.add_argument("--test", type=Path, required=True, help="test split, evaluated once per seed (same layouts)")
    p.add_argument("--out", type=Path, required=True,
                   help="output folder: metrics.json and best/ (the best seed's classifier); created if missing")
    p.add_argument("--epochs", type=positive_int, default=3, metavar="N", help="passes over the training split")
    p.add_argument("--seeds", type=positive_int, default=3, metavar="K",
                   help="number of seeds (0..K-1); mean ± std is reported")
    p.add_argument("--pooling", choices=("mean", "last", "chunk"), default="mean",
                   help="how per-base features become one vector per sequence")
    p.add_argument("--rc-tta", action="store_true", help="average predictions over both strands")
    p.add_argument("--rc-aug", action="store_true", help="reverse-complement half the training sequences")
    p.add_argument("--baseline", choices=("kmer",), help="also run the 6-mer logistic regression")
    p.add_argument("--freeze-backbone", action="store_true", help="linear probe: train the head only")
    p.add_argument("--task", choices=("classification", "regression"), default="classification",
                   help="what the labels are")
    p.add_argument("--batch-size", type=positive_int, default=32, metavar="N", help="sequences per step")
    p.add_argument("--lr", type=positive_float, default=5e-4, help="AdamW peak learning rate")
    p.add_argument("--weight-decay", type=nonnegative_float, default=0.01, help="AdamW weight decay")
    p.add_argument("--val-fraction", type=open_fraction, default=0.1,
                   help="share of --train held out for validation, per seed")
    p.add_argument("--max-len", type=positive_int, metavar="BP",
                   help="model context in bp (default: train.seq_len of --config, or the window length a --model was "
                        "pretrained on when it recorded one)")
    p.add_argument("--on-long", choices=("error", "truncate"), default="error",
                   help="sequences longer than --max-len: fail, or keep their first --max-len bases")
    p.add_argument("--keep-case", action="store_true", help="keep soft-masked lower case as distinct bytes")
    p.add_argument("--train-limit", type=positive_int, metavar="N",
                   help="train on a seeded subset of this many sequences (default: all)")
    add_threads(p)
    add_quiet(p)
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--precision", default="auto", help=PRECISION_HELP)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hnet_genomics.tasks.finetune import FinetuneSettings, check_classifier_folder, prepare_task, run_finetune
    from hnet_genomics.tasks.readers import read_labelled

    if args.model is None and args.config is None and args.baseline is None:
        raise ConfigError("finetune needs --model DIR or --config NAME, and/or --baseline kmer")
    if args.baseline == "kmer" and args.task == "regression":
        raise ConfigError("--baseline kmer is a classifier; it cannot run on a regression task")
    check_output_dir(args.out)
    check_classifier_folder(args.out / "best")
    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)
    apply_threads(args.threads, args.quiet)

    make_backbone, max_len, source = _backbone_factory(args)
    if make_backbone is not None:
        from hnet_genomics.kernels import dispatch

        dispatch.report(device, "finetune")
    settings = FinetuneSettings(
        epochs=args.epochs, seeds=args.seeds, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, pooling=args.pooling, freeze_backbone=args.freeze_backbone,
        rc_tta=args.rc_tta, rc_aug=args.rc_aug, val_fraction=args.val_fraction, kind=args.task,
        max_len=args.max_len or max_len, on_long=args.on_long, train_limit=args.train_limit, device=device,
        precision=precision)
    soft_mask = "keep" if args.keep_case else "upper"
    task = prepare_task(read_labelled(args.train, soft_mask), read_labelled(args.test, soft_mask), settings)
    t0 = time.perf_counter()
    report = run_finetune(task, settings, args.out, make_backbone, args.baseline == "kmer",
                          description={"backbone": source}, progress=show_progress(args.quiet))
    for name, res in report["results"].items():
        mean, std = res["mean"], res["std"]
        shown = [k for k in ("test_accuracy", "test_mcc", "test_f1", "test_auroc", "test_mse", "test_pearson")
                 if k in mean]
        print(f"{name}: " + "  ".join(f"{k}={mean[k]:.4f}±{std[k]:.4f}" for k in shown))
    print(f"wrote {args.out / 'metrics.json'} ({time.perf_counter() - t0:.0f}s)")
    return 0


def _backbone_factory(args: argparse.Namespace):
    """(factory or None, default context length or None, description) for --model / --config."""
    from hnet_genomics import build_model, from_pretrained, load_config

    if args.model is not None:
        pretrained = from_pretrained(args.model)  # loaded before the data, so a bad directory fails first
        return (lambda: copy.deepcopy(pretrained)), pretrained.trained_context, f"pretrained:{args.model}"
    if args.config is not None:
        cfg = load_config(args.config)
        return (lambda: build_model(cfg.model)), cfg.train.seq_len, f"scratch:{args.config}"
    return None, None, None
