"""How much memory a training step needs, measured on the path that will run rather than guessed.

What autograd keeps for the backward grows with the tokens of a step and depends on the kernels (the fused
Mamba-2 path keeps a fraction of what the torch path keeps) and on the precision. So the estimate runs the
model forward on two short sequences (at most 256 and 512 bases, so that measuring never costs what it warns
about), on the training device at the training precision, counts the bytes of every distinct tensor autograd
saves (parameters aside), and takes the difference as the cost of a base: every op keeps O(length) per
sequence (flash and memory-efficient attention keep no (L, L) matrix). The rest of a step is 16 bytes per
parameter (fp32 weight and gradient, AdamW's two moments). Chunk sequences take their exact width while
measuring (training plans up to ``ChunkCapacity.HEADROOM`` more room for the main network).

An H-Net's main network keeps memory in proportion to the chunks it receives, and a fresh router chunks
nowhere near its target (``model/drawn_routing.py``), so the measurement draws boundaries at a compression
20 % below each level's target N: more chunks than a trained router makes, which it may dip to early on.
``plan_micro_batch`` turns the estimate into the micro-batch a device can hold.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from hnet_genomics.devices import inference_precision
from hnet_genomics.errors import ConfigError
from hnet_genomics.model.drawn_routing import drawn_boundaries
from hnet_genomics.model.lm import HNetLM

OPTIMIZER_BYTES_PER_PARAM = 16
MEASURED_COMPRESSION_SCALE = 0.8  # measure at 0.8 x the target compression: a router below target keeps more
MEMORY_MARGIN = 0.8  # a step may plan to use this fraction of the free memory (allocator, transient buffers)


@dataclass(frozen=True)
class MemoryEstimate:
    per_window: int  # saved-activation bytes each training window adds
    fixed: int  # saved bytes that do not grow with the batch (weights cast for autocast, ...)
    params: int

    def step_bytes(self, windows: int) -> int:
        """Parameters + gradients + optimizer state + saved activations of ``windows`` windows."""
        return self.params * OPTIMIZER_BYTES_PER_PARAM + self.fixed + self.per_window * windows

    def windows_that_fit(self, budget: int) -> int:
        return max((budget - self.params * OPTIMIZER_BYTES_PER_PARAM - self.fixed) // max(self.per_window, 1), 0)


def saved_bytes(run: Callable[[], torch.Tensor], exclude: Iterable[torch.Tensor] = ()) -> int:
    """Bytes of the distinct storages autograd saves while ``run()`` builds its graph, those of ``exclude``
    (parameters, an input that is kept anyway) aside."""
    excluded = {t.untyped_storage().data_ptr() for t in exclude}
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        if s.data_ptr() not in excluded:
            storages[s.data_ptr()] = max(storages.get(s.data_ptr(), 0), s.nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = run()
    del out
    return sum(storages.values())


def saved_activation_bytes(model: torch.nn.Module, ids: torch.Tensor, precision: str = "fp32") -> int:
    """Bytes of the distinct storages autograd saves during one forward and loss (parameters excluded)."""

    def forward_and_loss() -> torch.Tensor:
        out = model(ids)
        loss = torch.nn.functional.cross_entropy(out.logits[:, :-1].flatten(0, 1).float(), ids[:, 1:].flatten())
        return loss if out.ratio_loss is None else loss + out.ratio_loss

    exact = model.exact_chunk_widths() if isinstance(model, HNetLM) else contextlib.nullcontext()
    with inference_precision(str(ids.device), precision), exact:
        return saved_bytes(forward_and_loss, model.parameters())


def measure_training_memory(
    model: torch.nn.Module,
    seq_len: int,
    precision: str = "fp32",
    seed: int = 0,
    compression_scale: float = MEASURED_COMPRESSION_SCALE,
) -> MemoryEstimate:
    """Saved bytes of random bases at two lengths on the model's device, extrapolated to ``seq_len``-base
    windows, with every chunking level's boundaries drawn at ``compression_scale`` x its target N."""
    device = next(model.parameters()).device
    short = max(min(seq_len, 512) // 2, 1)
    g = torch.Generator().manual_seed(seed)
    bases = torch.tensor(list(b"ACGT"))[torch.randint(0, 4, (1, 2 * short), generator=g)].to(device)
    was_training = model.training
    model.train()
    try:
        with drawn_boundaries(model, compression_scale, seed):
            one = saved_activation_bytes(model, bases[:, :short], precision)
            two = saved_activation_bytes(model, bases, precision)
    finally:
        model.train(was_training)
    per_base = max(two - one, 0) / short
    return MemoryEstimate(
        per_window=int(per_base * seq_len),
        fixed=max(int(one - per_base * short), 0),
        params=sum(p.numel() for p in model.parameters()),
    )


def plan_micro_batch(estimate: MemoryEstimate, budget: int, micro_batch: int, accumulate: int) -> tuple[int, int]:
    """(windows per micro-batch, micro-batches per optimizer step) for a step that must stay within ``budget``
    bytes: the configured split when it fits, else the largest micro-batch that fits and divides the windows of
    an optimizer step, with accumulation raised to keep their number. A ConfigError when one window is too many.
    """
    if estimate.step_bytes(micro_batch) <= budget:
        return micro_batch, accumulate
    fits = estimate.windows_that_fit(budget)
    if fits < 1:
        raise ConfigError(
            f"a training step does not fit even with one window per micro-batch: it needs about "
            f"{estimate.step_bytes(1) / 2**30:.1f} GiB ({estimate.params / 1e6:.1f} M parameters with "
            f"gradients and AdamW state, {estimate.per_window / 2**20:,.0f} MiB of activations per window, "
            f"measured) and {budget / 2**30:.1f} GiB may be used; shorten train.seq_len or use a larger device"
        )
    total = micro_batch * accumulate
    micro = max(d for d in range(1, min(fits, total) + 1) if total % d == 0)
    return micro, total // micro


def _meminfo_available() -> int | None:
    """MemAvailable of /proc/meminfo (free memory plus what the kernel can reclaim, e.g. the page cache)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def available_bytes(device: torch.device | str) -> int | None:
    """Free memory of a CUDA ``device``, or the host's available memory for the CPU; None where unknown."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0] if torch.cuda.is_available() else None
    found = _meminfo_available()
    if found is not None:
        return found
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
