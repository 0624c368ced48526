"""``hnet-genomics finetune``: labelled sequences -> per-seed and mean ± std test metrics beside a k-mer baseline."""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

from hnet_genomics.devices import DEVICE_HELP, resolve_device
from hnet_genomics.errors import ConfigError


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
    p.add_argument("--train", type=Path, required=True, help="training split (validation is carved from it)")
    p.add_argument("--test", type=Path, required=True, help="test split, evaluated once per seed")
    p.add_argument("--out", type=Path, required=True, help="output directory (metrics.json, best/)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (0..K-1); mean ± std is reported")
    p.add_argument("--pooling", choices=("mean", "last", "chunk"), default="mean")
    p.add_argument("--rc-tta", action="store_true", help="average predictions over both strands")
    p.add_argument("--rc-aug", action="store_true", help="reverse-complement half the training sequences")
    p.add_argument("--baseline", choices=("kmer",), help="also run the 6-mer logistic regression")
    p.add_argument("--freeze-backbone", action="store_true", help="linear probe: train the head only")
    p.add_argument("--task", choices=("classification", "regression"), default="classification")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--layer-decay", type=float, default=1.0,
                   help="layer-wise LR decay: each residual block below the top trains at this factor times the "
                        "block above (e.g. 0.8); 1 = one learning rate")
    p.add_argument("--ratio-loss-weight", type=float, default=0.03,
                   help="weight of an H-Net's ratio loss while fine-tuning (keeps its chunking near the target)")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--max-len", type=int,
                   help="model context in bp (default: train.seq_len of --config, or the window length a --model was "
                        "pretrained on when it recorded one)")
    p.add_argument("--on-long", choices=("error", "truncate"), default="error",
                   help="sequences longer than --max-len: fail, or keep their first --max-len bases")
    p.add_argument("--keep-case", action="store_true", help="keep soft-masked lower case as distinct bytes")
    p.add_argument("--train-limit", type=int, help="train on a seeded subset of this many sequences")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.set_defaults(func=run)

    p = sub.add_parser(
        "make-task", help="cut a labelled-window task from a genome, split by position",
        description="Write OUT/train.csv.gz, OUT/test.csv.gz (sequence,label,name) and OUT/task.json. Test windows "
                    "lie after a cut (--test-from of each record, moved out of any gene), train windows before "
                    "it. exon-starts: windows centred on exon starts in transcript orientation vs GC-matched "
                    "gene-body windows far from exon edges (stranded: no --rc-tta); species: random windows of "
                    "each --genome. Defaults: the embedded human HLA region and its annotation, E. coli K-12.")
    p.add_argument("kind", choices=("exon-starts", "species"))
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--width", type=int, default=200, help="window length in bp")
    p.add_argument("--test-from", type=float, default=0.85, help="where the test part of each record begins")
    p.add_argument("--seed", type=int, default=0, help="seed of the background / window sampling")
    p.add_argument("--fasta", type=Path, help="exon-starts: genome FASTA (bgzip or plain)")
    p.add_argument("--exons", type=Path, help="exon-starts: exon BED")
    p.add_argument("--cds", type=Path, help="exon-starts: CDS BED with strands (orients each exon)")
    p.add_argument("--genes", type=Path, help="exon-starts: gene BED (no gene straddles the cut)")
    p.add_argument("--genome", action="append", default=[], metavar="LABEL=FASTA",
                   help="species: a class and its genome (repeat; default human and ecoli, embedded)")
    p.add_argument("--train-per-class", type=int, default=2000, help="species: training windows per class")
    p.add_argument("--test-per-class", type=int, default=250, help="species: test windows per class")
    p.set_defaults(func=make_task)


def run(args: argparse.Namespace) -> int:
    from hnet_genomics.tasks.finetune import FinetuneSettings, prepare_task, run_finetune
    from hnet_genomics.tasks.readers import read_labelled

    if args.model is None and args.config is None and args.baseline is None:
        raise ConfigError("finetune needs --model DIR or --config NAME, and/or --baseline kmer")
    for name in ("epochs", "seeds", "batch_size", "max_len", "train_limit"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
    if not 0.0 < args.val_fraction < 1.0:
        raise ConfigError("--val-fraction must be between 0 and 1")
    if not 0.0 < args.layer_decay <= 1.0:
        raise ConfigError("--layer-decay must be in (0, 1]")
    if args.ratio_loss_weight < 0:
        raise ConfigError("--ratio-loss-weight must not be negative")
    device = resolve_device(args.device)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    make_backbone, max_len, source = _backbone_factory(args)
    settings = FinetuneSettings(
        epochs=args.epochs, seeds=args.seeds, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, pooling=args.pooling, freeze_backbone=args.freeze_backbone,
        layer_decay=args.layer_decay, ratio_loss_weight=args.ratio_loss_weight,
        rc_tta=args.rc_tta, rc_aug=args.rc_aug, val_fraction=args.val_fraction, kind=args.task,
        max_len=args.max_len or max_len, on_long=args.on_long, train_limit=args.train_limit, device=device)
    soft_mask = "keep" if args.keep_case else "upper"
    task = prepare_task(read_labelled(args.train, soft_mask), read_labelled(args.test, soft_mask), settings)
    t0 = time.perf_counter()
    report = run_finetune(task, settings, args.out, make_backbone, args.baseline == "kmer",
                          description={"backbone": source})
    for name, res in report["results"].items():
        mean, std = res["mean"], res["std"]
        shown = [k for k in ("test_accuracy", "test_mcc", "test_f1", "test_auroc", "test_mse", "test_pearson")
                 if k in mean]
        print(f"{name}: " + "  ".join(f"{k}={mean[k]:.4f}±{std[k]:.4f}" for k in shown))
    print(f"wrote {args.out / 'metrics.json'} ({time.perf_counter() - t0:.0f}s)")
    return 0


def make_task(args: argparse.Namespace) -> int:
    import json

    from hnet_genomics.data import demo
    from hnet_genomics.data.atomic import write_text_atomic
    from hnet_genomics.data.bed import read_bed6
    from hnet_genomics.data.genome import Genome
    from hnet_genomics.tasks.genome_tasks import exon_start_task, species_task, write_windows_csv

    if not 0.0 < args.test_from < 1.0:
        raise ConfigError("--test-from must be between 0 and 1")
    if args.width < 2:
        raise ConfigError("--width must be at least 2")
    if args.kind == "exon-starts":
        genome = Genome(args.fasta or demo.HUMAN_FASTA)
        splits, summary = exon_start_task(
            genome, read_bed6(args.exons or demo.HUMAN_EXONS_BED), read_bed6(args.cds or demo.HUMAN_CDS_BED),
            read_bed6(args.genes or demo.HUMAN_GENES_BED), args.width, args.test_from, seed=args.seed)
        summary["stranded"] = True
    else:
        pairs = args.genome or [f"human={demo.HUMAN_FASTA}", f"ecoli={demo.ECOLI_FASTA}"]
        if any("=" not in p for p in pairs) or len(pairs) < 2:
            raise ConfigError("--genome expects LABEL=FASTA, at least two of them")
        genomes = {label: Genome(path) for label, path in (p.split("=", 1) for p in pairs)}
        for name in ("train_per_class", "test_per_class"):
            if getattr(args, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
        splits, summary = species_task(genomes, args.train_per_class, args.test_per_class, args.width,
                                       args.test_from, args.seed)
        summary["stranded"] = False
    for split, windows in splits.items():
        write_windows_csv(windows, args.out / f"{split}.csv.gz")
    write_text_atomic(args.out / "task.json", json.dumps({"kind": args.kind, **summary}, indent=2) + "\n")
    counts = ", ".join(f"{s} {sum(c.values())}" for s, c in summary["counts"].items())
    print(f"wrote {args.out}: {counts} windows")
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
