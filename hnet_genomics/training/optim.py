"""AdamW parameter groups (per-stage learning-rate multipliers, no decay on norms/biases/embeddings) and
learning-rate schedules as multiplicative factors of the base LR."""

from __future__ import annotations

import math

import torch
from torch import nn

from hnet_genomics.config import ModelConfig, TrainConfig


def parameter_stage(name: str) -> int:
    """Hierarchy level a parameter belongs to: each ``main`` on its path goes one level deeper.

    Embeddings and the LM head act at the base resolution (stage 0).
    """
    return name.split(".").count("main")


def no_weight_decay(name: str, param: nn.Parameter, module_types: dict[str, type]) -> bool:
    if param.ndim < 2 or getattr(param, "_no_weight_decay", False):
        return True
    owner = name.rsplit(".", 1)[0]
    return module_types.get(owner) is nn.Embedding


def param_groups(model: nn.Module, model_cfg: ModelConfig, train_cfg: TrainConfig) -> list[dict]:
    """One group per (stage, decay) pair; ``lr`` already scaled by the stage's multiplier."""
    module_types = {n: type(m) for n, m in model.named_modules()}
    groups: dict[tuple[int, bool], dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        stage = parameter_stage(name.removeprefix("model."))
        decay = not no_weight_decay(name, p, module_types)
        key = (stage, decay)
        if key not in groups:
            mult = model_cfg.lr_multipliers[stage]
            groups[key] = {"params": [], "names": [], "lr": train_cfg.lr * mult, "lr_multiplier": mult,
                           "weight_decay": train_cfg.weight_decay if decay else 0.0, "stage": stage}
        groups[key]["params"].append(p)
        groups[key]["names"].append(name)
    return [groups[k] for k in sorted(groups)]


def make_optimizer(model: nn.Module, model_cfg: ModelConfig, train_cfg: TrainConfig) -> torch.optim.AdamW:
    groups = param_groups(model, model_cfg, train_cfg)
    for g in groups:
        g.pop("names")
    return torch.optim.AdamW(groups, lr=train_cfg.lr, betas=tuple(train_cfg.betas), eps=1e-8)


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Multiplier of each group's LR at optimizer step ``step``: linear warmup, then
    ``wsd`` (constant, then linear decay over the last ``decay_fraction``), ``cosine`` or ``constant``."""
    total, warm = max(cfg.max_steps, 1), cfg.warmup_steps
    if warm and step < warm:
        return (step + 1) / warm
    floor = cfg.min_lr_ratio
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "cosine":
        progress = min((step - warm) / max(total - warm, 1), 1.0)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    decay_start = total - int(cfg.decay_fraction * total)
    if step < decay_start:
        return 1.0
    progress = min((step - decay_start) / max(total - decay_start, 1), 1.0)
    return floor + (1 - floor) * (1 - progress)


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, cfg))
