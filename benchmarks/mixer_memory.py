"""What the Mamba-2 mixer keeps for the backward, per token and per training window, on each conv/mixer path.

The paths a GPU can take (the rest of the mixer on mamba-ssm's Triton scan and gated norm in every one):
  - torch taps promoting: the conv's fp32 parameters promote every tap of the bf16 activation to fp32 (what ran
    without causal-conv1d before the conv kernel and the dtype fix);
  - torch taps in bf16: the same taps, parameters cast to the activation's dtype (no GPU conv at all, now);
  - Triton conv, unfused: our conv (saves only its input) between the scan's and the norm's own autograd;
  - Triton conv in the fused mixer: mamba-ssm's ``mamba_split_conv1d_scan_combined`` calling our conv, which keeps
    what it keeps with causal-conv1d (the projection output, the scan output, the norm's 1/rms);
and, for reference, the pure-torch mixer the CPU runs (its chunked SSD keeps (chunk x chunk) decay matrices).

For each path: the bytes autograd saves in one bf16-autocast forward of a mixer block at the paper model's widths
(d_model 512 in the encoder and decoder, 768 in the main network), per token from two lengths; then the mixer's
share of one 1,024-base training window of ``dna/hnet_1stage``: every Mamba-2 layer's tokens (counted in a forward
with boundaries every third base, the trained model's compression of ~3) times its per-token bytes. ``--model``
also measures whole windows on each path (``training/resources.py``, all of the GPU path routed: slow under the
Triton interpreter, quick on a GPU).

On a CPU the Triton kernels (ours and mamba-ssm's) run under the Triton interpreter on CPU tensors: the bytes
saved depend on shapes and dtypes, not on the device, so the figures hold for a GPU (the interpreter's bf16
``tl.dot`` is inexact, which changes values, not what is saved).

    python benchmarks/mixer_memory.py --model --model-paths "torch taps promoting to fp32 (before)" \
        "Triton conv, unfused mixer" "Triton conv in mamba-ssm's fused mixer" \
        --out benchmarks/results/mixer-memory-cpu.md                      # about 2 hours on 2 busy cores
    python benchmarks/mixer_memory.py --model --out benchmarks/results/mixer-memory-h200.md   # on a GPU
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported: Triton kernels on CPU tensors

import torch.nn.functional as F  # noqa: E402
from hardware import cpu_name  # noqa: E402

from hnet_genomics import build_model, load_config  # noqa: E402
from hnet_genomics.atomic import write_text_atomic  # noqa: E402
from hnet_genomics.devices import inference_precision  # noqa: E402
from hnet_genomics.kernels import conv as conv_k  # noqa: E402
from hnet_genomics.kernels import dispatch  # noqa: E402
from hnet_genomics.kernels import routing as routing_k  # noqa: E402
from hnet_genomics.kernels.triton.interpreter import interpreted_as_gpu  # noqa: E402
from hnet_genomics.model.geometry import Geometry  # noqa: E402
from hnet_genomics.model.mamba2 import Mamba2  # noqa: E402
from hnet_genomics.training.resources import measure_training_memory, saved_bytes  # noqa: E402

CONFIG = "dna/hnet_1stage"
COMPRESSION = 3


def taps_promoting(x, w, bias=None, positions=None, has_resets=False, activation=None):
    y = conv_k.causal_conv1d_ref(x, w, bias, positions if has_resets else None)
    return F.silu(y) if activation == "silu" else y


@contextlib.contextmanager
def triton_conv_in_fused_mixer() -> Iterator[None]:
    """mamba-ssm's fused mixer calling our conv for the duration (causal-conv1d's functions put back after)."""
    from hnet_genomics.kernels import gpu_mamba
    from hnet_genomics.kernels.triton import conv

    combined = gpu_mamba._kernels().combined
    names = ("causal_conv1d_fwd_function", "causal_conv1d_bwd_function")
    before = [getattr(combined, name) for name in names]
    for name, function in zip(names, (conv.conv_fwd_function, conv.conv_bwd_function)):
        setattr(combined, name, function)
    try:
        yield
    finally:
        for name, function in zip(names, before):
            setattr(combined, name, function)


def paths() -> dict[str, tuple[dict[str, Callable], Callable[[], contextlib.AbstractContextManager]]]:
    """name -> (op -> kernel for every tensor, context to run in)."""
    from hnet_genomics.kernels import gpu_mamba
    from hnet_genomics.kernels.triton import conv, ema_dechunk, routing

    mamba = {"ssd": gpu_mamba.ssd_scan, "rms_norm": gpu_mamba.rms_norm, "gated_rms_norm": gpu_mamba.gated_rms_norm}
    ours = {
        "ema": ema_dechunk.ema_scan_triton,
        "ema_dechunk": ema_dechunk.ema_dechunk_triton,
        "routing": routing.routing_fused_triton,
    }
    base = {**mamba, **ours}
    none = contextlib.nullcontext
    return {
        "torch mixer (the CPU path)": ({}, none),
        "torch taps promoting to fp32 (before)": ({**base, "conv": taps_promoting}, none),
        "torch taps in bf16": ({**base, "conv": conv_k.causal_conv1d_taps}, none),
        "Triton conv, unfused mixer": ({**base, "conv": conv.causal_conv1d_triton}, none),
        "Triton conv in mamba-ssm's fused mixer": (
            {**base, "conv": conv.causal_conv1d_triton, "mamba2_fused": gpu_mamba.mamba2_split_scan},
            triton_conv_in_fused_mixer,
        ),
    }


@contextlib.contextmanager
def routed(kernels: dict[str, Callable]) -> Iterator[None]:
    """Every op in ``kernels`` takes that kernel, on any device; the others their torch path."""
    real = dispatch.gpu_kernel
    dispatch.gpu_kernel = lambda op, like: kernels.get(op)
    try:
        yield
    finally:
        dispatch.gpu_kernel = real


@contextlib.contextmanager
def boundaries_every(n: int) -> Iterator[None]:
    """Routing keeps its probabilities (and their gradients) but puts a boundary at every n-th position of each
    sequence: the compression of a trained model instead of an untrained one's, the same on every path."""
    real = routing_k.routing_fused

    def fixed(q, k, starts):
        p, _ = real(q, k, starts)
        position = (
            torch.arange(starts.shape[1], device=starts.device)
            - torch.cummax(torch.where(starts, torch.arange(starts.shape[1], device=starts.device), 0), dim=1).values
        )
        return p, starts | (position % n == 0)

    routing_k.routing_fused = fixed
    try:
        yield
    finally:
        routing_k.routing_fused = real


def mixer_bytes_per_token(d_model: int, device: str, lengths=(256, 512)) -> float:
    """Saved bytes of one Mamba-2 block (in-projection to out-projection) per token, bf16 autocast."""
    config = load_config(CONFIG)
    torch.manual_seed(0)
    mixer = Mamba2(d_model, config.model.ssm).to(device)
    measured = []
    for length in lengths:
        hidden = torch.randn(1, length, d_model, device=device, requires_grad=True)
        geom = Geometry.padded(torch.ones(1, length, dtype=torch.bool, device=device))
        with inference_precision(device, "bf16"):
            measured.append(saved_bytes(lambda h=hidden, g=geom: mixer(h, g), mixer.parameters()))
    return (measured[1] - measured[0]) / (lengths[1] - lengths[0])


def mamba_tokens_per_window(device: str) -> dict[int, int]:
    """d_model -> tokens that Mamba-2 layers of that width see in one window (summed over layers)."""
    config = load_config(CONFIG)
    torch.manual_seed(0)
    model = build_model(config).to(device)
    seen: dict[int, int] = {}

    def count(module, args, output):
        seen[module.d_model] = seen.get(module.d_model, 0) + int(args[1].valid.sum())

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, Mamba2)]
    ids = torch.tensor(list(b"ACGT"), device=device)[torch.randint(0, 4, (1, config.train.seq_len))]
    with torch.no_grad(), boundaries_every(COMPRESSION), routed({}):
        model(ids)
    for hook in hooks:
        hook.remove()
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--model", action="store_true", help="also measure whole windows on each path (slow on CPU)")
    parser.add_argument("--paths", nargs="+", help="only these paths (names as in the table)")
    parser.add_argument("--model-paths", nargs="+", help="with --model, whole windows of only these paths")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    # off a GPU, mamba-ssm's and our Triton kernels run under the interpreter
    with contextlib.nullcontext() if args.device.startswith("cuda") else interpreted_as_gpu():
        measure(args)


def measure(args: argparse.Namespace) -> None:
    device = args.device
    hardware = torch.cuda.get_device_name(device) if device.startswith("cuda") else cpu_name()
    config = load_config(CONFIG)
    batch = config.train.batch_size
    tokens = mamba_tokens_per_window(device)
    print(f"{hardware}; Mamba-2 tokens per window by width: {tokens}", flush=True)
    rows, model_rows = [], []
    for name, (kernels, context) in paths().items():
        if args.paths and name not in args.paths:
            continue
        with routed(kernels), context():
            per_token = {d: mixer_bytes_per_token(d, device) for d in sorted(tokens)}
            window = sum(per_token[d] * n for d, n in tokens.items())
            rows.append(
                f"| {name} | "
                + " | ".join(f"{per_token[d] / 1024:,.1f}" for d in sorted(tokens))
                + f" | {window / 2**20:,.0f} | {window * batch / 2**30:,.1f} |"
            )
            print(rows[-1], flush=True)
            if args.model and (not args.model_paths or name in args.model_paths):
                torch.manual_seed(0)
                model = build_model(config).to(device)
                with boundaries_every(COMPRESSION):
                    estimate = measure_training_memory(model, config.train.seq_len, "bf16")
                model_rows.append(
                    f"| {name} | {estimate.per_window / 2**20:,.0f} | {estimate.per_window * batch / 2**30:,.1f} |"
                )
                print(model_rows[-1], flush=True)
    widths = " | ".join(f"KiB per token, d_model {d}" for d in sorted(tokens))
    counts = ", ".join(f"d_model {d}: {n:,}" for d, n in sorted(tokens.items()))
    report = [
        "# What the Mamba-2 mixer keeps for the backward, per conv/mixer path",
        "",
        f"Measured on {hardware} ({device}; bf16 autocast; torch {torch.__version__})"
        + (
            ", the Triton kernels (ours and mamba-ssm's) under the Triton interpreter: saved bytes depend on shapes "
            "and dtypes, not on the device."
            if not device.startswith("cuda")
            else "."
        ),
        "Bytes autograd keeps for one forward of a Mamba-2 block (in-projection input to out-projection), per token "
        f"(from 256 and 512 tokens), at the widths of `{CONFIG}`; the mixer's share of a "
        f"{config.train.seq_len:,}-base window is the sum over its Mamba-2 layers of their tokens times these bytes "
        f"(tokens per width, boundaries every {COMPRESSION} bases: {counts}); "
        f"the micro-batch is the shipped {batch} windows. Every path runs the scan and gated norm on mamba-ssm "
        "except the first.",
        "",
        f"| path | {widths} | mixer MiB per window | mixer GiB per {batch}-window micro-batch |",
        "|---|" + "---|" * (len(tokens) + 2),
        *rows,
        "",
    ]
    if model_rows:
        report += [
            "Whole windows (`training/resources.py`; routing, EMA dechunk on our Triton kernels, attention on "
            "torch SDPA, boundaries every third base):",
            "",
            f"| path | saved MiB per window | GiB per {batch}-window micro-batch |",
            "|---|---|---|",
            *model_rows,
            "",
        ]
    command = "python benchmarks/mixer_memory.py" + (" --model" if args.model else "")
    if args.model and args.model_paths:
        command += " --model-paths " + " ".join(f'"{name}"' for name in args.model_paths)
    report += [f"Command: `{command} --device {device}`", ""]
    text = "\n".join(report)
    if args.out:
        write_text_atomic(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
