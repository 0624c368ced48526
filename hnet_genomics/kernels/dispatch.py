"""Which implementation runs each op: the pure-torch path, or a GPU kernel.

``HNET_KERNELS`` (or ``set_backend``) chooses: ``torch`` always takes the pure-torch path; ``auto`` (default)
takes a GPU kernel for CUDA tensors when its package imports and the torch path otherwise (``report`` says
which, and warns about every CUDA op left on the torch path); ``gpu`` demands the GPU kernels and raises
``ConfigError`` when tensors are not on CUDA or a required package is missing.

Providers are imported lazily, once, on the first CUDA call, so nothing GPU-only is imported on CPU and the
CPU path costs one string lookup per call. A provider may name a ``fallback``, tried when it does not load
(the conv: causal-conv1d, else our Triton kernel, else torch). A provider returns ``None`` for inputs it does
not support (a dtype or width its kernel lacks); the next provider of the chain that loaded gets the call, and
after the last the caller falls through to the torch path.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch

from hnet_genomics.errors import ConfigError

BACKEND_ENV = "HNET_KERNELS"
BACKENDS = ("auto", "torch", "gpu")


@dataclass(frozen=True)
class Provider:
    module: str  # our wrapper module, imported on first use
    function: str
    package: str  # what to install when it is missing
    required: bool = True  # False: an optional fusion whose parts have their own providers
    check: str = "require"  # function of ``module`` that raises when the kernel cannot run here
    name: str = ""  # how reports name it, when not by its package
    fallback: Provider | None = None  # tried when this one does not load (or returns None for an input)

    @property
    def label(self) -> str:
        return self.name or self.package

    def chain(self) -> list[Provider]:
        return [self] + (self.fallback.chain() if self.fallback is not None else [])


PROVIDERS: dict[str, Provider] = {
    "ssd": Provider("hnet_genomics.kernels.gpu_mamba", "ssd_scan", "mamba-ssm"),
    "rms_norm": Provider("hnet_genomics.kernels.gpu_mamba", "rms_norm", "mamba-ssm"),
    "add_rms_norm": Provider("hnet_genomics.kernels.gpu_mamba", "add_rms_norm", "mamba-ssm"),
    "gated_rms_norm": Provider("hnet_genomics.kernels.gpu_mamba", "gated_rms_norm", "mamba-ssm"),
    "conv": Provider(
        "hnet_genomics.kernels.gpu_conv",
        "causal_conv1d",
        "causal-conv1d",
        fallback=Provider("hnet_genomics.kernels.triton.conv", "causal_conv1d_triton", "triton"),
    ),
    "mamba2_fused": Provider(
        "hnet_genomics.kernels.gpu_mamba",
        "mamba2_split_scan",
        "causal-conv1d",
        required=False,
        check="require_split_conv",
        fallback=Provider(
            "hnet_genomics.kernels.gpu_mamba",
            "mamba2_split_scan",
            "triton",
            required=False,
            check="require_split_triton_conv",
            name="mamba-ssm + Triton conv",
        ),
    ),
    "attention": Provider("hnet_genomics.kernels.gpu_attention", "attention", "flash-attn"),
    "ema": Provider("hnet_genomics.kernels.triton.ema_dechunk", "ema_scan_triton", "triton"),
    "ema_dechunk": Provider("hnet_genomics.kernels.triton.ema_dechunk", "ema_dechunk_triton", "triton"),
    "routing": Provider("hnet_genomics.kernels.triton.routing", "routing_fused_triton", "triton"),
}

_forced: str | None = None


def _check(value: str, source: str) -> str:
    value = value.lower()
    if value not in BACKENDS:
        raise ConfigError(f"{source}: kernel backend must be one of {', '.join(BACKENDS)}, got {value!r}")
    return value


def set_backend(name: str | None) -> None:
    """Force a backend for this process (``None`` returns control to ``HNET_KERNELS``)."""
    global _forced
    _forced = None if name is None else _check(name, "kernels")


def requested_backend() -> str:
    if _forced is not None:
        return _forced
    return _check(os.environ.get(BACKEND_ENV, "auto"), BACKEND_ENV)


def _load_one(provider: Provider) -> tuple[Callable | None, str]:
    try:
        module = importlib.import_module(provider.module)
        getattr(module, provider.check)()
    except Exception as e:  # a broken binary raises OSError/RuntimeError as often as ImportError
        return None, f"{type(e).__name__}: {e}".splitlines()[0]
    return getattr(module, provider.function), ""


def _first_answer(kernels: list[Callable]) -> Callable:
    """One kernel that hands each call down the chain until a kernel takes the input (None: none did)."""

    def call(*args, **kwargs):
        for kernel in kernels:
            if (out := kernel(*args, **kwargs)) is not None:
                return out
        return None

    return call


# op -> how ``describe`` names the provider ``load`` chose: its label, and why the ones before it did not load
_chosen: dict[str, str] = {}


@functools.cache
def load(op: str) -> tuple[Callable | None, str]:
    """(kernel, "") when a provider of the op's chain loads, else (None, why not). The kernel is the first
    loaded provider's, handing inputs it returns None for to the next loaded one; ``why`` starts with the first
    provider's reason and names each fallback's."""
    chain = PROVIDERS[op].chain()
    tried = [(provider, *_load_one(provider)) for provider in chain]
    reasons = [f"{provider.package} unavailable: {why}" for provider, kernel, why in tried if kernel is None]
    kernels = [(provider, kernel) for provider, kernel, _ in tried if kernel is not None]
    if not kernels:
        _chosen.pop(op, None)
        return None, "; ".join([tried[0][2]] + reasons[1:])
    first = chain.index(kernels[0][0])
    _chosen[op] = kernels[0][0].label + (f" ({'; '.join(reasons[:first])})" if first else "")
    if len(kernels) == 1:
        return kernels[0][1], ""
    return _first_answer([kernel for _, kernel in kernels]), ""


def loaded_label(op: str) -> str:
    """How ``describe`` names the provider of ``op`` that loaded (a fallback says why the ones before it did not)."""
    return _chosen.get(op, PROVIDERS[op].label)


def gpu_kernel(op: str, like: torch.Tensor) -> Callable | None:
    """The GPU kernel for ``op`` if this call should use one, else None (take the torch path)."""
    backend = requested_backend()
    if backend == "torch":
        return None
    if not like.is_cuda:
        if backend == "gpu":
            raise ConfigError(
                f"{BACKEND_ENV}=gpu: {op} got a {like.device.type} tensor "
                f"(CUDA available: {torch.cuda.is_available()}); use auto or torch on this machine"
            )
        return None
    kernel, why = load(op)
    if kernel is None and backend == "gpu" and PROVIDERS[op].required:
        packages = " or ".join(provider.package for provider in PROVIDERS[op].chain())
        raise ConfigError(
            f"{BACKEND_ENV}=gpu: {op} needs {packages}, which does not load ({why}); "
            "install the 'gpu' extra or use auto"
        )
    return kernel


log = logging.getLogger("hnet_genomics.kernels")

# What the torch path costs on a GPU, for the fallback warning.
FALLBACK_COST = {
    "ssd": "the torch SSD materialises fp32 (chunk x chunk) decay tensors per layer: several times the memory",
    "conv": "the torch conv runs K separate multiply-adds and saves what each of them needs",
    "attention": "SDPA instead of flash-attn (packed rows are attended sequence by sequence)",
    "mamba2_fused": "the mixer saves the conv output and the normalised activations instead of recomputing them",
    "add_rms_norm": "each block adds its residual and normalises in separate ops (several launches, one more pass)",
}


def report(device: torch.device | str, context: str = "") -> dict[str, str]:
    """Log which implementation each op takes on ``device`` (at INFO on CUDA, where it varies) and warn when a
    CUDA op falls back to torch."""
    table = describe(device)
    prefix = f"{context}: " if context else ""
    level = logging.INFO if torch.device(device).type == "cuda" else logging.DEBUG  # a CPU has one path
    log.log(level, "%skernels on %s: %s", prefix, device, ", ".join(f"{op}={impl}" for op, impl in table.items()))
    fallen = {op: impl for op, impl in table.items() if impl.startswith(("torch (", "unfused ("))}
    if fallen:
        lines = "; ".join(f"{op} -> {impl} [{FALLBACK_COST.get(op, 'slower')}]" for op, impl in fallen.items())
        warnings.warn(
            f"{prefix}CUDA ops without their GPU kernel: {lines}. Install the kernels (README, "
            f"section GPUs) or set {BACKEND_ENV}=gpu to make this an error.",
            stacklevel=2,
        )
    return table


def describe(device: torch.device | str) -> dict[str, str]:
    """Which implementation each op takes for tensors on ``device`` (for logs and benchmark reports)."""
    device = torch.device(device)
    backend = requested_backend()
    out = {}
    for op, provider in PROVIDERS.items():
        if backend == "torch" or device.type != "cuda":
            out[op] = "torch"
            continue
        kernel, why = load(op)
        if kernel is not None:
            out[op] = loaded_label(op)
        else:
            instead = "torch" if provider.required else "unfused"
            out[op] = f"{instead} ({provider.package} unavailable: {why})"
    return out
