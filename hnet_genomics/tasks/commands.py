"""``hnet-genomics finetune``: labelled sequences -> per-seed and mean ± std test metrics beside a k-mer baseline."""

from __future__ import annotations

import argparse
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
    nonnegative_float,
    nonnegative_int,
    open_fraction,
    positive_float,
    positive_int,
    show_progress,
)
from hnet_genomics.outputs import check_paths, output_folder

TASK_FILES = ("train.csv.gz", "test.csv.gz", "task.json")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "finetune",
        help="fine-tune a model (or run the k-mer baseline) on a labelled sequence task",
        description="Fine-tune a pretrained model (--model), a freshly initialised one (--config) and/or the "
        "6-mer logistic-regression baseline (--baseline kmer) on a classification or regression "
        "task. A validation split is carved from --train per seed; the best validation epoch is "
        "tested once. Task files: CSV/TSV (sequence,label[,name]), FASTA with '>name|label' "
        "headers (Nucleotide Transformer tasks), or a Genomic Benchmarks split directory.",
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", type=Path, help="pretrained model: " + MODEL_HELP)
    src.add_argument("--config", help="config name or YAML: train this architecture from scratch")
    p.add_argument(
        "--train",
        type=Path,
        required=True,
        help="training split (validation is carved from it): CSV/TSV (UTF-8, plain or gzip), FASTA or "
        "a Genomic Benchmarks split folder",
    )
    p.add_argument("--test", type=Path, required=True, help="test split, evaluated once per seed (same layouts)")
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="output folder: metrics.json and best/ (the best seed's classifier); created if missing",
    )
    p.add_argument("--epochs", type=positive_int, default=3, metavar="N", help="passes over the training split")
    p.add_argument(
        "--seeds", type=positive_int, default=3, metavar="K", help="number of seeds (0..K-1); mean ± std is reported"
    )
    p.add_argument(
        "--pooling",
        choices=("mean", "last", "chunk"),
        default="mean",
        help="how per-base features become one vector per sequence",
    )
    p.add_argument("--rc-tta", action="store_true", help="average predictions over both strands")
    p.add_argument("--rc-aug", action="store_true", help="reverse-complement half the training sequences")
    p.add_argument("--baseline", choices=("kmer",), help="also run the 6-mer logistic regression")
    p.add_argument("--freeze-backbone", action="store_true", help="linear probe: train the head only")
    p.add_argument(
        "--task", choices=("classification", "regression"), default="classification", help="what the labels are"
    )
    p.add_argument("--batch-size", type=positive_int, default=32, metavar="N", help="sequences per step")
    p.add_argument("--lr", type=positive_float, default=5e-4, help="AdamW peak learning rate")
    p.add_argument("--weight-decay", type=nonnegative_float, default=0.01, help="AdamW weight decay")
    p.add_argument(
        "--layer-decay",
        type=positive_float,
        default=1.0,
        help="layer-wise LR decay in (0, 1]: each residual block below the top trains at this factor "
        "times the block above (e.g. 0.8); 1 = one learning rate",
    )
    p.add_argument(
        "--ratio-loss-weight",
        type=nonnegative_float,
        default=0.03,
        help="weight of an H-Net's ratio loss while fine-tuning (keeps its chunking near the target)",
    )
    p.add_argument(
        "--val-fraction", type=open_fraction, default=0.1, help="share of --train held out for validation, per seed"
    )
    p.add_argument(
        "--max-len",
        type=positive_int,
        metavar="BP",
        help="model context in bp (default: train.seq_len of --config, or the window length a --model was "
        "pretrained on when it recorded one)",
    )
    p.add_argument(
        "--on-long",
        choices=("error", "truncate"),
        default="error",
        help="sequences longer than --max-len: fail, or keep their first --max-len bases",
    )
    p.add_argument("--keep-case", action="store_true", help="keep soft-masked lower case as distinct bytes")
    p.add_argument(
        "--train-limit",
        type=positive_int,
        metavar="N",
        help="train on a seeded subset of this many sequences (default: all)",
    )
    add_threads(p)
    add_quiet(p)
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--precision", default="auto", help=PRECISION_HELP)
    p.set_defaults(func=run)

    p = sub.add_parser(
        "make-task",
        help="cut a labelled-window task from a genome, split by position",
        description="Write OUT/train.csv.gz, OUT/test.csv.gz (sequence,label,name) and OUT/task.json. Test windows "
        "lie after a cut (--test-from of each record, moved out of any gene), train windows before "
        "it. exon-starts: windows centred on exon starts in transcript orientation vs GC-matched "
        "gene-body windows far from exon edges (stranded: no --rc-tta); species: random windows of "
        "each --genome. Defaults: the embedded human HLA region and its annotation, E. coli K-12.",
    )
    p.add_argument("kind", choices=("exon-starts", "species"), help="which task to cut")
    p.add_argument("--out", type=Path, required=True, help="output folder (created with its parents)")
    p.add_argument("--width", type=positive_int, default=200, metavar="BP", help="window length in bp")
    p.add_argument(
        "--test-from", type=open_fraction, default=0.85, help="fraction of each record where its test part begins"
    )
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the background / window sampling")
    p.add_argument("--fasta", type=Path, help="exon-starts: genome FASTA (bgzip or plain)")
    p.add_argument("--exons", type=Path, help="exon-starts: exon BED")
    p.add_argument("--cds", type=Path, help="exon-starts: CDS BED with strands (orients each exon)")
    p.add_argument("--genes", type=Path, help="exon-starts: gene BED (no gene straddles the cut)")
    p.add_argument(
        "--genome",
        action="append",
        default=[],
        metavar="LABEL=FASTA",
        help="species: a class and its genome (repeat; default human and ecoli, embedded)",
    )
    p.add_argument(
        "--train-per-class", type=positive_int, default=2000, metavar="N", help="species: training windows per class"
    )
    p.add_argument(
        "--test-per-class", type=positive_int, default=250, metavar="N", help="species: test windows per class"
    )
    p.set_defaults(func=make_task)

    from hnet_genomics.tasks import benchmark_commands

    benchmark_commands.register(sub)


def run(args: argparse.Namespace) -> int:
    from hnet_genomics.data.labelled import SoftMask, read_labelled
    from hnet_genomics.model.hub import model_folder
    from hnet_genomics.model.lm import check_saved_model
    from hnet_genomics.tasks.finetune import FinetuneSettings, check_classifier_folder, prepare_task, run_finetune

    if args.model is None and args.config is None and args.baseline is None:
        raise ConfigError("finetune needs --model DIR or --config NAME, and/or --baseline kmer")
    if args.baseline == "kmer" and args.task == "regression":
        raise ConfigError("--baseline kmer is a classifier; it cannot run on a regression task")
    if args.layer_decay > 1.0:
        raise ConfigError(f"--layer-decay must be in (0, 1], got {args.layer_decay}")
    if args.model is not None:
        args.model = check_saved_model(
            model_folder(args.model)
        )  # inputs first: a folder that is no model is named as such
    check_paths(
        {
            "--model": args.model,
            "--train": args.train,
            "--test": args.test,
            "--config": args.config if args.config and Path(args.config).is_file() else None,
        },
        [output_folder(args.out, files=("metrics.json",), folders=("best",))],
    )
    check_classifier_folder(args.out / "best")
    device = resolve_device(args.device)
    precision = resolve_precision(args.precision, device)
    apply_threads(args.threads, args.quiet)

    make_backbone, max_len, source = _backbone_factory(args)
    if make_backbone is not None:
        from hnet_genomics.kernels import dispatch

        dispatch.report(device, "finetune")
    settings = FinetuneSettings(
        epochs=args.epochs,
        seeds=args.seeds,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        pooling=args.pooling,
        freeze_backbone=args.freeze_backbone,
        layer_decay=args.layer_decay,
        ratio_loss_weight=args.ratio_loss_weight,
        rc_tta=args.rc_tta,
        rc_aug=args.rc_aug,
        val_fraction=args.val_fraction,
        kind=args.task,
        max_len=args.max_len or max_len,
        on_long=args.on_long,
        train_limit=args.train_limit,
        device=device,
        precision=precision,
    )
    soft_mask: SoftMask = "keep" if args.keep_case else "upper"
    task = prepare_task(read_labelled(args.train, soft_mask), read_labelled(args.test, soft_mask), settings)
    t0 = time.perf_counter()
    report = run_finetune(
        task,
        settings,
        args.out,
        make_backbone,
        args.baseline == "kmer",
        description={"backbone": source},
        progress=show_progress(args.quiet),
    )
    for name, res in report["results"].items():
        mean, std = res["mean"], res["std"]
        shown = [
            k for k in ("test_accuracy", "test_mcc", "test_f1", "test_auroc", "test_mse", "test_pearson") if k in mean
        ]
        print(f"{name}: " + "  ".join(f"{k}={mean[k]:.4f}±{std[k]:.4f}" for k in shown))
    print(f"wrote {args.out / 'metrics.json'} ({time.perf_counter() - t0:.0f}s)")
    return 0


def make_task(args: argparse.Namespace) -> int:
    import json

    from hnet_genomics.atomic import write_text_atomic
    from hnet_genomics.data import demo
    from hnet_genomics.data.bed import read_bed6
    from hnet_genomics.data.genome import Genome
    from hnet_genomics.tasks.genome_tasks import (
        check_on_genome,
        check_stranded,
        exon_start_task,
        require_windows,
        species_task,
        write_windows_csv,
    )

    if args.width < 2:
        raise ConfigError("--width must be at least 2")
    for option in ("fasta", "exons", "cds", "genes"):
        if getattr(args, option) is not None:
            check_input_file(getattr(args, option), f"--{option}")
    pairs = genome_labels(args.genome) if args.kind == "species" else {}
    check_paths(
        {
            **{f"--{o}": getattr(args, o) for o in ("fasta", "exons", "cds", "genes")},
            "--genome": list(pairs.values()),
        },
        [output_folder(args.out, files=TASK_FILES)],
    )
    if args.kind == "exon-starts":
        fasta = args.fasta or demo.HUMAN_FASTA
        genome = Genome(fasta)
        beds = {
            "--exons": args.exons or demo.HUMAN_EXONS_BED,
            "--cds": args.cds or demo.HUMAN_CDS_BED,
            "--genes": args.genes or demo.HUMAN_GENES_BED,
        }
        records = {option: read_bed6(path) for option, path in beds.items()}
        for option, path in beds.items():
            check_on_genome(records[option], path, option, genome.sizes, fasta)
        check_stranded(records["--cds"], beds["--cds"])
        splits, summary = exon_start_task(
            genome,
            records["--exons"],
            records["--cds"],
            records["--genes"],
            args.width,
            args.test_from,
            seed=args.seed,
        )
        summary["stranded"] = True
    else:
        genomes = {label: Genome(path) for label, path in pairs.items()}
        splits, summary = species_task(
            genomes, args.train_per_class, args.test_per_class, args.width, args.test_from, args.seed
        )
        summary["stranded"] = False
    require_windows(summary, args.kind, args.width, args.test_from)
    for split, windows in splits.items():
        write_windows_csv(windows, args.out / f"{split}.csv.gz")
    write_text_atomic(args.out / "task.json", json.dumps({"kind": args.kind, **summary}, indent=2) + "\n")
    counts = ", ".join(f"{s} {sum(c.values())}" for s, c in summary["counts"].items())
    print(f"wrote {args.out}: {counts} windows")
    return 0


def genome_labels(items: list[str]) -> dict[str, Path]:
    """``--genome LABEL=FASTA`` (default: the embedded human and E. coli genomes) as {label: path}: at least two
    classes, each label a CSV field the task reader reads back as it was written, each genome its own file."""
    from hnet_genomics.data import demo

    if not items:
        return {"human": Path(demo.HUMAN_FASTA), "ecoli": Path(demo.ECOLI_FASTA)}
    pairs: dict[str, Path] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--genome {item}: expected LABEL=FASTA")
        label, path = item.split("=", 1)
        if not label.strip() or label != label.strip() or any(c in label for c in ',"\t\r\n'):
            raise ConfigError(
                f"--genome {item}: the label {label!r} must be non-empty text without commas, quotes, tabs or "
                f"surrounding spaces (it becomes the task's label column)"
            )
        if label in pairs:
            raise ConfigError(f"--genome {item}: label '{label}' is given twice; each class needs its own label")
        check_input_file(path, "--genome")
        for other, seen in pairs.items():
            if seen.resolve() == Path(path).resolve() or seen.samefile(path):
                raise ConfigError(f"--genome {item}: the same file as {other}={seen}; each class needs its own genome")
        pairs[label] = Path(path)
    if len(pairs) < 2:
        raise ConfigError("--genome expects LABEL=FASTA, at least two of them")
    return pairs


def _backbone_factory(args: argparse.Namespace):
    """(factory or None, default context length or None, description) for --model / --config."""
    from hnet_genomics.tasks.backbones import load_backbone

    backbone = load_backbone(args.model, args.config)
    if backbone is None:
        return None, None, None
    return backbone.make, backbone.context, backbone.description
