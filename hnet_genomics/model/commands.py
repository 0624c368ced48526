"""`hnet-genomics push` (a model to the Hugging Face Hub, with its card) and `hnet-genomics import-reference`
(a checkpoint of the H-Net reference implementation as a model of this package)."""

from __future__ import annotations

import argparse
from pathlib import Path

from hnet_genomics.options import check_input_file, positive_float, positive_int


def _push(args: argparse.Namespace) -> int:
    from hnet_genomics.model import hub, publish

    for e in args.eval:
        check_input_file(e, "--eval")
    if not hub.is_repo_id(args.repo) or "@" in args.repo:
        from hnet_genomics.errors import ConfigError

        raise ConfigError(f"--repo {args.repo}: not a Hugging Face repo id (org/name; a branch goes in --revision)")
    if not Path(args.model).is_dir():
        from hnet_genomics.errors import CheckpointError

        raise CheckpointError(f"--model {args.model}: no such folder")
    if args.dry_run:
        upload = publish.gather(args.model, args.eval, args.repo)
        for name, source in upload.files.items():
            print(f"{name}\t{source}")
        print("README.md\t(model card below)\n")
        print(upload.card)
        return 0
    hub.huggingface_hub()  # the missing extra is named before anything is read
    url = publish.push(args.model, args.repo, args.eval, args.revision, args.private or None, args.message)
    print(f"pushed {args.model} to {args.repo}: {url}")
    return 0


def _import_reference(args: argparse.Namespace) -> int:
    from hnet_genomics.atomic import foreign_entries
    from hnet_genomics.errors import OutputError
    from hnet_genomics.model.lm import MODEL_FILES
    from hnet_genomics.model.reference_import import import_reference
    from hnet_genomics.outputs import check_paths, output_folder

    check_input_file(args.checkpoint, "--checkpoint")
    check_input_file(args.config, "--config")
    check_paths(
        {"--checkpoint": args.checkpoint, "--config": args.config}, [output_folder(args.out, files=MODEL_FILES)]
    )
    out = Path(args.out)
    foreign = foreign_entries(out, MODEL_FILES) if out.is_dir() else []
    if foreign:
        raise OutputError(
            f"--out {out}: holds files a model folder does not ({', '.join(foreign[:3])}); choose another --out"
        )
    summary = import_reference(args.checkpoint, args.config, args.out, args.target_compression, args.context)
    import json

    print(
        f"imported {summary.tensors} tensors ({summary.parameters:,} parameters, {summary.dtype}) of a "
        f"{summary.config.num_stages}-stage H-Net {json.dumps(summary.config.arch_layout)} into {args.out}"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "push",
        help="upload a model to the Hugging Face Hub with a model card",
        description="Upload a saved model (or a pretraining run's model/) to a Hugging Face Hub model repository "
        "in one commit: its files, the run's metrics.json and config.yaml, the --eval results (as "
        "eval/NAME.json) and README.md, a model card whose figures are read from those files. "
        "Log in first (`hf auth login` or HF_TOKEN).",
    )
    p.add_argument("--model", required=True, help="pretraining run folder or saved model folder")
    p.add_argument("--repo", required=True, metavar="ORG/NAME", help="the Hub model repository (created if missing)")
    p.add_argument(
        "--eval",
        action="append",
        default=[],
        metavar="JSON",
        help="an `hnet-genomics eval --out` result to include and report, e.g. the test split (repeatable)",
    )
    p.add_argument("--revision", metavar="BRANCH", help="push to this branch (created if missing) instead of main")
    p.add_argument("--private", action="store_true", help="create the repository private")
    p.add_argument("--message", help="commit message")
    p.add_argument("--dry-run", action="store_true", help="list the files and print the model card; upload nothing")
    p.set_defaults(func=_push)

    r = subparsers.add_parser(
        "import-reference",
        help="convert a checkpoint of the H-Net reference implementation into a model folder",
        description="Convert a checkpoint of the H-Net reference implementation (goombalab/hnet; e.g. the "
        "paper's released hnet_1stage_L ... hnet_2stage_XL) and its config JSON into a model folder "
        "that from_pretrained, boundaries, likelihood and generation run on any device. Every tensor is "
        "mapped and shape-checked; none may be missing or left over. Weights keep the checkpoint's dtype.",
    )
    r.add_argument(
        "--checkpoint", required=True, help="the reference's state dict: .pt (read weights-only) or .safetensors"
    )
    r.add_argument("--config", required=True, help="its config JSON in the reference's format (configs/*.json there)")
    r.add_argument("--out", required=True, help="model folder to write (new, or a model folder written before)")
    r.add_argument(
        "--target-compression",
        type=positive_float,
        nargs="+",
        metavar="N",
        help="chunking target per level, used only by further training (default: the paper's, 6 for one "
        "level and 3 3 for two)",
    )
    r.add_argument(
        "--context",
        type=positive_int,
        metavar="N",
        help="the window length the model was trained on, recorded in training.json (export commands default "
        "their window to it)",
    )
    r.set_defaults(func=_import_reference)
