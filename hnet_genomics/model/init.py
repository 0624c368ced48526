"""Initialisation scale and stage ownership of parameters, the two things the H-Net recipe sets per stage.

Residual-branch scaling follows the reference implementation (goombalab/hnet, itself after mamba-ssm and
GPT-2): a stage's network counts its residual layers (one per mixer, one more per MLP) plus those of every
encoder and decoder outside it, and its branch output projections start at ``INIT_STD / sqrt(count)``.
For the paper's DNA model ``["m3t1", ["m15"], "m4"]`` that is 8 layers for the outer encoder and decoder
and 8 + 15 = 23 for the main network.
"""

from __future__ import annotations

from torch import nn

INIT_STD = 0.02  # std of every Linear before residual scaling (the reference's initializer_range)


def parameter_stages(model: nn.Module) -> dict[str, int]:
    """Name -> stage of every parameter (0 = outermost), read from the modules that own them.

    A module with a ``stage`` attribute (each H-Net level and each stage network) puts its parameters and
    its children's in that stage; names listed in its ``inner_stage_parameters`` go one stage deeper (the
    width pad, which only exists to feed the inner network). Modules without one inherit their parent's.
    """
    stages: dict[str, int] = {}

    def walk(module: nn.Module, prefix: str, stage: int) -> None:
        stage = getattr(module, "stage", stage)
        inner = getattr(module, "inner_stage_parameters", ())
        for name, _ in module.named_parameters(recurse=False):
            stages[prefix + name] = stage + 1 if name in inner else stage
        for name, child in module.named_children():
            walk(child, f"{prefix}{name}.", stage)

    walk(model, "", 0)
    return stages
