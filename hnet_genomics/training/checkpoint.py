"""Atomic checkpoint writes, and checkpoint reads that can never run code.

A training checkpoint is a pickle; ``torch.load(weights_only=False)`` on one would execute whatever a file
in a shared run folder asks. Every read here (resume, model selection, Lightning's own restore) goes through
``load_checkpoint_safely``: tensors, containers and plain numbers only, whatever torch's default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from hnet_genomics.atomic import atomic_path
from hnet_genomics.config import without_training_keys
from hnet_genomics.errors import CheckpointError


def load_checkpoint_safely(path: str | Path, map_location: Any = "cpu") -> dict:
    """Load a checkpoint with the restricted (weights-only) unpickler; anything else is a CheckpointError."""
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such checkpoint") from None
    except Exception as e:  # truncated zip, pickle garbage, wrong file type, or objects the safe loader refuses
        text = str(e).split("\n")[0]
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            raise CheckpointError(
                f"{path}: refused: the checkpoint holds Python objects other than tensors and "
                f"plain data, which could run code when loaded (not written by hnet-genomics?)"
            ) from None
        raise CheckpointError(f"{path}: corrupt or unreadable checkpoint ({type(e).__name__}: {text})") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: not an hnet-genomics training checkpoint")
    return ckpt


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write to a temporary file in the same folder, fsync, then rename: a run killed mid-write (SIGKILL,
    out of memory, pre-emption) leaves the previous checkpoint of that name intact. Reads are weights-only."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict[str, Any]:
        return load_checkpoint_safely(path, map_location if map_location is not None else "cpu")


def load_for_resume(path: Path, config_dict: dict) -> dict:
    """Read a checkpoint and check it belongs to this model; any problem is a CheckpointError.

    Only the architecture must match: training settings (LR, multipliers, ratio-loss weight) may change
    between the interrupted run and the resumed one, and the resumed run trains with the new ones.
    """
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint to resume from (run without --resume to start fresh)")
    ckpt = load_checkpoint_safely(path)
    if "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise CheckpointError(f"{path}: not an hnet-genomics training checkpoint")
    saved = ckpt["hyper_parameters"].get("config", {}).get("model")
    if isinstance(saved, dict):  # older checkpoints kept training settings in the model section
        saved = without_training_keys(saved)[0]
    if saved != config_dict["model"]:
        diff = sorted(
            k
            for k in set(saved or {}) | set(config_dict["model"])
            if (saved or {}).get(k) != config_dict["model"].get(k)
        )
        raise CheckpointError(
            f"{path}: checkpoint was trained with a different model config "
            f"(differs in: {', '.join(diff) or 'everything'})"
        )
    return ckpt
