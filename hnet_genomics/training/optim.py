"""AdamW parameter groups (per-stage learning-rate multipliers, no decay on norms/biases/embeddings) and
learning-rate schedules as multiplicative factors of the base LR.

Weight decay follows the common convention (GPT-2, mamba-ssm's ``_no_weight_decay`` marks): matrices decay;
vectors (norm weights, biases, the width pad, Mamba-2's A_log / D / dt_bias) and the byte embeddings do not.
The H-Net reference exempts only biases and the Mamba-2 gated norm, decaying embeddings, block norms and the
SSM's A / D / dt too; we keep the conventional split, since decaying A_log or dt_bias towards 0 moves the
SSM's time scales rather than shrinking a weight.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from hnet_genomics.config import ModelConfig, TrainConfig
from hnet_genomics.model.lm import HNetLM
from hnet_genomics.model.mamba2 import NO_WEIGHT_DECAY


def default_lr_multipliers(model_cfg: ModelConfig) -> list[float]:
    """The H-Net paper's per-stage rule: stage s trains at sqrt(N^s * D^S / D^s) times the base LR.

    N^s is the product of the target compressions from stage s inwards (how many bases one token of stage s
    stands for, relative to the innermost), D^s the stage's width and D^S the innermost width: outer stages
    see more, smaller-width tokens per step and take larger steps. [1.0] for an isotropic model; ~[2.12, 1.0]
    for the paper's 1-stage DNA H-Net (N = 3, d = 512 / 768).
    """
    d, n = model_cfg.d_model, [float(x) for x in model_cfg.target_compression]
    return [math.sqrt(math.prod(n[s:]) * d[-1] / d[s]) for s in range(len(d))]


def lr_multipliers(model_cfg: ModelConfig, train_cfg: TrainConfig) -> list[float]:
    """``train.lr_multipliers`` when the config sets them, else ``default_lr_multipliers``."""
    if train_cfg.lr_multipliers is not None:
        return list(train_cfg.lr_multipliers)
    return default_lr_multipliers(model_cfg)


def no_weight_decay(name: str, param: nn.Parameter, module_types: dict[str, type]) -> bool:
    if param.ndim < 2 or getattr(param, NO_WEIGHT_DECAY, False):
        return True
    owner = name.rsplit(".", 1)[0]
    return module_types.get(owner) is nn.Embedding


def param_groups(model: HNetLM, model_cfg: ModelConfig, train_cfg: TrainConfig) -> list[dict]:
    """One group per (stage, decay) pair; ``lr`` already scaled by the stage's multiplier.

    ``model`` is an ``HNetLM``: the stage of each parameter is the one its module declared when built
    (``HNetLM.parameter_stages``), not guessed from its name.
    """
    mults = lr_multipliers(model_cfg, train_cfg)
    stages = model.parameter_stages()
    module_types = {n: type(m) for n, m in model.named_modules()}
    groups: dict[tuple[int, bool], dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        stage = stages[name]
        decay = not no_weight_decay(name, p, module_types)
        key = (stage, decay)
        if key not in groups:
            groups[key] = {
                "params": [],
                "names": [],
                "lr": train_cfg.lr * mults[stage],
                "lr_multiplier": mults[stage],
                "weight_decay": train_cfg.weight_decay if decay else 0.0,
                "stage": stage,
            }
        groups[key]["params"].append(p)
        groups[key]["names"].append(name)
    return [groups[k] for k in sorted(groups)]


def make_optimizer(
    model: HNetLM, model_cfg: ModelConfig, train_cfg: TrainConfig, fused: bool | None = None
) -> torch.optim.AdamW:
    """AdamW over ``param_groups``. ``fused`` (default: when every parameter is on a GPU, no fp16 loss scaler
    unscales the gradients first and FSDP does not shard them) takes torch's fused kernel: a few multi-tensor
    launches per step instead of several per parameter, the same update."""
    groups = param_groups(model, model_cfg, train_cfg)
    for g in groups:
        g.pop("names")
    if fused is None:
        on_gpu = all(p.is_cuda for g in groups for p in g["params"])
        fused = on_gpu and train_cfg.precision != "16-mixed" and train_cfg.strategy != "fsdp"
    beta1, beta2 = train_cfg.betas  # two numbers, as TrainConfig.validate checks
    return torch.optim.AdamW(groups, lr=train_cfg.lr, betas=(beta1, beta2), eps=1e-8, fused=fused or None)


def retarget_lr(checkpoint: dict, model_cfg: ModelConfig, train_cfg: TrainConfig) -> None:
    """Point a checkpoint's optimiser groups and LR schedule at this config's LR and multipliers.

    The optimiser and scheduler states saved in a checkpoint carry the learning rates of the run that wrote
    it; resuming with another ``train.lr`` or ``train.lr_multipliers`` must train at the new ones. Groups are
    matched by their ``stage``; their number and order depend on the architecture only.
    """
    mults = lr_multipliers(model_cfg, train_cfg)
    optimizers, schedulers = checkpoint.get("optimizer_states") or [], checkpoint.get("lr_schedulers") or []
    if not optimizers:
        return
    base = []
    for group in optimizers[0].get("param_groups", []):
        if "stage" not in group:
            return  # not one of ours
        group["lr_multiplier"] = mults[group["stage"]]
        group["initial_lr"] = train_cfg.lr * group["lr_multiplier"]
        base.append(group["initial_lr"])
    if schedulers:
        sched = schedulers[0]
        factor = lr_factor(int(sched.get("last_epoch", 0)), train_cfg)
        sched["base_lrs"] = base
        sched["_last_lr"] = [b * factor for b in base]
        for group, lr in zip(optimizers[0]["param_groups"], sched["_last_lr"]):
            group["lr"] = lr


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
