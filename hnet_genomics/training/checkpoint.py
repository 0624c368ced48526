"""Atomic checkpoint writes and validation of a checkpoint before resuming from it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from hnet_genomics.config import without_training_keys
from hnet_genomics.data.atomic import atomic_path
from hnet_genomics.errors import CheckpointError


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write to a temporary file in the same folder, fsync, then rename: a run killed mid-write (SIGKILL,
    out of memory, pre-emption) leaves the previous checkpoint of that name intact."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())


def load_for_resume(path: Path, config_dict: dict) -> dict:
    """Read a checkpoint and check it belongs to this model; any problem is a CheckpointError.

    Only the architecture must match: training settings (LR, multipliers, ratio-loss weight) may change
    between the interrupted run and the resumed one, and the resumed run trains with the new ones.
    """
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint to resume from (run without --resume to start fresh)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # truncated zip, pickle garbage, wrong file type
        raise CheckpointError(f"{path}: corrupt or unreadable checkpoint ({type(e).__name__}: {e})") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "hyper_parameters" not in ckpt:
        raise CheckpointError(f"{path}: not an hnet-genomics training checkpoint")
    saved = ckpt["hyper_parameters"].get("config", {}).get("model")
    if isinstance(saved, dict):  # older checkpoints kept training settings in the model section
        saved = without_training_keys(saved)[0]
    if saved != config_dict["model"]:
        diff = sorted(k for k in set(saved or {}) | set(config_dict["model"])
                      if (saved or {}).get(k) != config_dict["model"].get(k))
        raise CheckpointError(f"{path}: checkpoint was trained with a different model config "
                              f"(differs in: {', '.join(diff) or 'everything'})")
    return ckpt
