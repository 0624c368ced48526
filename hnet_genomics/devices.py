"""The torch device a command runs on. ``auto`` takes a GPU when torch sees one, so a pipeline job that was
given a GPU uses it without a per-job flag, and the same command still runs on a CPU-only machine."""

from __future__ import annotations

from hnet_genomics.errors import ConfigError

DEVICE_HELP = "torch device: auto (a GPU if torch sees one, else the CPU), cpu, cuda or cuda:N"


def resolve_device(text: str, option: str = "--device") -> str:
    """``auto`` -> ``cuda`` or ``cpu``; anything else is checked, so a typo or an absent GPU is one line."""
    import torch

    if text == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        kind = torch.device(text).type
    except RuntimeError:
        raise ConfigError(f"{option}: '{text}' is not a torch device (auto, cpu, cuda, cuda:N)") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{option} {text}: torch sees no CUDA GPU on this machine (use cpu or auto)")
    if kind not in ("cpu", "cuda"):
        raise ConfigError(f"{option} {text}: only cpu and cuda devices are supported")
    return text
