"""`hnet-genomics import-reference`: a checkpoint of the H-Net reference implementation as a model of this package."""

from __future__ import annotations

import argparse

from hnet_genomics.options import check_input_file, check_output_dir, positive_float, positive_int


def _import_reference(args: argparse.Namespace) -> int:
    from hnet_genomics.atomic import foreign_entries
    from hnet_genomics.errors import OutputError
    from hnet_genomics.model.lm import MODEL_FILES
    from hnet_genomics.model.reference_import import import_reference

    check_input_file(args.checkpoint, "--checkpoint")
    check_input_file(args.config, "--config")
    out = check_output_dir(args.out)
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
