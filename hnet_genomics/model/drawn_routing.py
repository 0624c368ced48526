"""Boundary decisions drawn at a chosen rate, so that cost is measured at the compression training reaches.

A freshly initialised router does not chunk at its target N: the paper's DNA model starts near 2 bases per
chunk in fp32 on a CPU, and made about one chunk per 1,024-base window in its first bf16 steps on an H200.
Speed or memory measured there describes another model (a main network nearly idle, or twice as busy).
``drawn_boundaries`` hooks every H-Net level's router for the duration of a ``with`` block: the routing
projections and kernel still run and ``p`` keeps its gradient, but the boundary mask they return is replaced
by independent draws with probability 1 / (scale x N) at every real position (sequence starts stay
boundaries), so downsampling, the main network on ~L / N tokens, the EMA dechunk, the confidence and the ratio
loss do the work they do once the router has learned its target. Chunk lengths are then geometric, as near
a trained router's as a cost measurement needs.

Only measurements use it (``benchmarks/train_step.py`` and ``benchmarks/launches.py``, the host-sync tests,
the pretraining memory check in ``training/resources.py``); the model's own forward is untouched and training
never draws.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator

import torch
from torch import nn

from hnet_genomics.model.geometry import Geometry


def _draw(
    rate: float,
    generators: dict[torch.device, torch.Generator],
    seed: int,
    quiet: Callable[[], contextlib.AbstractContextManager],
    module,
    args,
    output,
):
    """Forward hook of a ``RoutingModule``: same probabilities, boundaries drawn at ``rate``."""
    p, _ = output
    geom = args[1]
    assert isinstance(geom, Geometry)  # RoutingModule.forward(hidden, geom)
    with quiet():
        g = generators.get(p.device)
        if g is None:
            g = generators[p.device] = torch.Generator(p.device).manual_seed(seed)
        drawn = torch.rand(p.shape, device=p.device, generator=g) < rate
        return p, (drawn | geom.starts) & geom.valid


@contextlib.contextmanager
def drawn_boundaries(
    model: nn.Module,
    scale: float = 1.0,
    seed: int = 0,
    quiet: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> Iterator[None]:
    """Inside the block, each level's router of ``model`` places boundaries at random with probability
    1 / (``scale`` x its target N): ``scale`` 1 is the target compression, 0.8 a compression 20 % lower (more
    chunks, more work). Draws are reproducible from ``seed``; an isotropic model is left as it is. The draw
    itself runs inside ``quiet()`` (``kernels.trace.paused`` keeps it out of a launch count: a trained router
    does not draw)."""
    from hnet_genomics.model.hnet import HNet

    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    generators: dict[torch.device, torch.Generator] = {}
    handles = [
        level.routing.register_forward_hook(
            functools.partial(_draw, 1.0 / (scale * level.target), generators, seed, quiet)
        )
        for level in model.modules()
        if isinstance(level, HNet)
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
