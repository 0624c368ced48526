"""The torch device and numeric precision a command runs at.

``auto`` device takes a GPU when torch sees one, so a pipeline job that was given a GPU uses it without a
per-job flag, and the same command still runs on a CPU-only machine. ``auto`` precision is bf16 autocast on
a GPU (what training uses, and what flash-attn needs) and plain fp32 on the CPU.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from hnet_genomics.errors import ConfigError

DEVICE_HELP = "torch device: auto (a GPU if torch sees one, else the CPU), cpu, cuda or cuda:N"
PRECISIONS = ("auto", "bf16", "tf32", "fp32")
PRECISION_HELP = (
    "numeric precision: auto (bf16 on a GPU, fp32 on the CPU), bf16 (autocast), tf32 (fp32 with "
    "TensorFloat-32 matmuls, GPU only) or fp32"
)


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
    if kind == "cuda" and ":" in text and int(text.split(":", 1)[1]) >= torch.cuda.device_count():
        raise ConfigError(f"{option} {text}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return text


def lightning_precision(trainer_precision: str) -> str:
    """The ``inference_precision`` matching a Lightning precision setting (``bf16-mixed`` -> ``bf16``)."""
    return {"bf16-mixed": "bf16", "bf16-true": "bf16", "16-mixed": "fp16", "16-true": "fp16"}.get(
        str(trainer_precision), "fp32"
    )


def resolve_precision(text: str, device: str, option: str = "--precision") -> str:
    """``auto`` -> ``bf16`` on CUDA, ``fp32`` on the CPU; ``tf32`` is refused off the GPU (it means nothing there)."""
    import torch

    if text not in PRECISIONS:
        raise ConfigError(f"{option}: '{text}' is not one of {', '.join(PRECISIONS)}")
    on_gpu = torch.device(device).type == "cuda"
    if text == "auto":
        return "bf16" if on_gpu else "fp32"
    if text == "tf32" and not on_gpu:
        raise ConfigError(f"{option} tf32: TensorFloat-32 is a GPU matmul mode; use fp32 or bf16 on {device}")
    return text


@contextlib.contextmanager
def inference_precision(device: str, precision: str) -> Iterator[None]:
    """Run the enclosed forward passes at ``precision`` (a value of ``resolve_precision``, or ``fp16``) on
    ``device``.

    Weights stay fp32; bf16 (and fp16) is autocast, as in mixed-precision training, so the residual stream,
    routing probabilities and EMA stay fp32 while matmuls, convolutions and attention run in 16 bits. TF32 is
    set for the block and restored after it.
    """
    import torch

    dev = torch.device(device)
    if precision not in PRECISIONS[1:] + ("fp16",):
        raise ValueError(f"unresolved precision {precision!r}")
    previous = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    try:
        if dev.type == "cuda":
            tf32 = precision in ("tf32", "bf16", "fp16")  # autocast leaves its fp32 ops to TF32
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
        if precision in ("bf16", "fp16"):
            with torch.autocast(dev.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16):
                yield
        else:
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = previous


class HostCopy:
    """A small tensor's value for the host, fetched without stalling the device.

    The copy is queued where it is made (on CUDA into pinned memory, behind an event); ``numpy()`` waits
    for that copy only, i.e. for the work queued before it, never for what was queued after. Read it late
    and the device is long past it: the host then waits for nothing. On the CPU the copy is immediate.
    """

    def __init__(self, tensor):
        import torch

        tensor = tensor.detach()
        self._event = None
        if tensor.is_cuda:
            self._host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
            self._host.copy_(tensor, non_blocking=True)
            self._event = torch.cuda.Event()
            self._event.record(torch.cuda.current_stream(tensor.device))
        else:
            self._host = torch.empty_like(tensor).copy_(tensor)

    def ready(self) -> bool:
        """Whether ``numpy()`` would return at once."""
        return self._event is None or self._event.query()

    def numpy(self):
        if self._event is not None:
            self._event.synchronize()
        return self._host.numpy()  # host memory (``numpy`` refuses device tensors)

    def item(self) -> int | float:
        return self.numpy().item()
