"""The backbone a task fine-tunes: a saved model (``--model``) or a config trained from scratch (``--config``)."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hnet_genomics.model.lm import HNetLM


@dataclass(frozen=True)
class Backbone:
    make: Callable[[], HNetLM]  # a fresh copy for each seed
    context: int | None  # bases per window it was pretrained on (None: unknown)
    description: str  # "pretrained:<dir>" or "scratch:<config>"
    config: dict  # the model config, as a dict (what a from-scratch run is fingerprinted by)


def load_backbone(model: str | Path | None, config: str | None) -> Backbone | None:
    """The saved model (a folder or a Hub repo id) is loaded at once, so a bad one fails before any data is read;
    None for neither."""
    from hnet_genomics.config import load_config
    from hnet_genomics.model.lm import HNetLM

    if model is not None:
        from hnet_genomics.model.hub import model_folder

        pretrained = HNetLM.from_pretrained(model_folder(model))
        return Backbone(
            lambda: copy.deepcopy(pretrained),
            pretrained.trained_context,
            f"pretrained:{model}",
            dataclasses.asdict(pretrained.config),
        )
    if config is not None:
        cfg = load_config(config)
        return Backbone(
            lambda: HNetLM(cfg.model), cfg.train.seq_len, f"scratch:{config}", dataclasses.asdict(cfg.model)
        )
    return None
