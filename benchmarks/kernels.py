"""Kernel benchmarks: the EMA dechunk three ways, routing two ways.

EMA dechunk (B rows, L positions, M = L / compression chunks, D channels): our fused Triton kernel vs the
reference H-Net's reuse of mamba-ssm's ``mamba_chunk_scan_combined`` (+ gather) vs the chunked torch path; B = 1
is the packed layout (one row of 1,024-base sequences, a reset at every sequence start), B = 8 the padded one.
Routing (q, k of B x L x D): the fused Triton kernel vs the torch reference.
Whole training steps per model (bases/s, MFU, peak memory at a realistic compression) are
``benchmarks/train_step.py``'s.

On CUDA it runs the real sizes; on CPU only the torch paths at tiny sizes (a smoke test, not a GPU claim):

    python benchmarks/kernels.py --out benchmarks/results/kernels-cpu.md
    python benchmarks/kernels.py --out benchmarks/results/kernels-gpu.md    # on a GPU machine
"""

from __future__ import annotations

import argparse
import functools
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch
from hardware import cpu_name

from hnet_genomics.atomic import write_text_atomic
from hnet_genomics.kernels import dispatch
from hnet_genomics.kernels import ema as ema_k


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (host: {cpu_name()})"
    return cpu_name()


def timed(fn: Callable[[], object], device: torch.device, reps: int, warmup: int = 2) -> float:
    """Median seconds per call."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def _probabilities(routing_fn: Callable, q: torch.Tensor, k: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
    return routing_fn(q, k, starts)[0]


def fwd_and_bwd(
    call: Callable[[], torch.Tensor], inputs: tuple, grad: torch.Tensor, device: torch.device, reps: int
) -> tuple[float, float]:
    """Median seconds of ``call()`` without autograd, and of the call plus the gradient of ``inputs``."""
    with torch.no_grad():
        fwd = timed(call, device, reps)
    return fwd, timed(lambda: torch.autograd.grad(call(), inputs, grad), device, reps)


def ema_candidates(device: torch.device) -> dict[str, Callable]:
    """name -> f(x, p, idx) producing the dechunked (B, L, D) output."""
    out: dict[str, Callable] = {}
    if device.type == "cuda":
        fused, why = dispatch.load("ema_dechunk")
        if fused is not None:
            out["fused Triton (ours)"] = fused
        if dispatch.load("ssd")[0] is not None:
            from hnet_genomics.kernels.gpu_mamba import ema_via_chunk_scan

            out["mamba_chunk_scan_combined + gather"] = lambda x, p, idx: ema_k.plug_back(ema_via_chunk_scan(x, p), idx)
    out["torch chunked + gather"] = lambda x, p, idx: ema_k.plug_back(ema_k.ema_scan_chunked(x, p), idx)
    return out


def _ema_inputs(device, dtype, b: int, length: int, d: int, n: int):
    """x (B, M, D), p (B, M) with a reset at each 1,024-base sequence start of a packed row, sorted idx (B, L)."""
    m = length // n
    g = torch.Generator(device).manual_seed(0)
    x = torch.randn(b, m, d, device=device, generator=g).to(dtype).requires_grad_()
    p = torch.rand(b, m, device=device, generator=g) * 0.9 + 0.05
    p[:, 0] = 1.0
    if b == 1:
        p[:, :: max(1024 // n, 1)] = 1.0
    p.requires_grad_()
    idx = torch.sort(torch.randint(0, m, (b, length), device=device, generator=g), dim=1).values
    return x, p, idx, torch.randn(b, length, d, device=device, generator=g).to(dtype)


def bench_ema(
    device: torch.device, shapes: list[tuple[int, int]], d: int, compressions: list[int], reps: int
) -> list[str]:
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    rows = []
    for b, length in shapes:
        for n in compressions:
            x, p, idx, grad = _ema_inputs(device, dtype, b, length, d, n)
            results = {}
            for name, fn in ema_candidates(device).items():
                results[name] = fwd_and_bwd(functools.partial(fn, x, p, idx), (x, p), grad, device, reps)
            base = results.get("mamba_chunk_scan_combined + gather")
            for name, (fwd, both) in results.items():
                speed = f"{base[0] / fwd:.2f}x / {base[1] / both:.2f}x" if base else "n/a"
                rows.append(
                    f"| {b} | {length:,} | {length // n:,} | {d} | {name} | {fwd * 1e3:.3f} | "
                    f"{both * 1e3:.3f} | {speed} |"
                )
                print(rows[-1], flush=True)
    return rows


def bench_routing(device: torch.device, shapes: list[tuple[int, int]], d: int, reps: int) -> list[str]:
    from hnet_genomics.kernels import routing as routing_k

    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    candidates = {"torch reference": routing_k.routing_fused_ref}
    fused, _ = dispatch.load("routing") if device.type == "cuda" else (None, "")
    if fused is not None:
        candidates = {"fused Triton (ours)": fused, **candidates}
    rows = []
    for b, length in shapes:
        g = torch.Generator(device).manual_seed(1)
        q, k = (torch.randn(b, length, d, device=device, generator=g).to(dtype).requires_grad_() for _ in range(2))
        starts = torch.zeros(b, length, dtype=torch.bool, device=device)
        starts[:, :: 1024 if b == 1 else length] = True
        grad = torch.randn(b, length, device=device, generator=g)
        results = {}
        for name, fn in candidates.items():
            results[name] = fwd_and_bwd(functools.partial(_probabilities, fn, q, k, starts), (q, k), grad, device, reps)
        base = results["torch reference"]
        for name, (fwd, both) in results.items():
            rows.append(
                f"| {b} | {length:,} | {d} | {name} | {fwd * 1e3:.3f} | {both * 1e3:.3f} | "
                f"{base[0] / fwd:.2f}x / {base[1] / both:.2f}x |"
            )
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write a markdown report here")
    parser.add_argument("--reps", type=int, default=None, help="timed repetitions (default 20 GPU, 3 CPU)")
    parser.add_argument("--quick", action="store_true", help="one small shape, one repetition: the harness only")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    gpu = device.type == "cuda"
    reps = 1 if args.quick else args.reps or (20 if gpu else 3)

    print(f"device: {device_name(device)}", flush=True)
    shapes = [(1, 8192), (1, 65536), (8, 8192), (8, 65536)] if gpu else [(1, 2048), (2, 1024)]
    d = 512 if gpu else 64
    if args.quick:
        shapes, d = [(1, 2048)], 64
    ema_rows = bench_ema(device, shapes, d, compressions=[3] if args.quick else [3, 1], reps=reps)
    routing_rows = bench_routing(device, shapes, d, reps=reps)
    kernels = ", ".join(f"{op}: {impl}" for op, impl in dispatch.describe(device).items())
    report = "\n".join(
        [
            "# Kernel benchmarks",
            "",
            f"Hardware: {device_name(device)}. torch {torch.__version__}"
            + ("" if gpu else f"; shared with other jobs (1-minute load average {os.getloadavg()[0]:.1f} at the end)")
            + ".",
            "",
            f"Kernels in use: {kernels}.",
            "",
            "## EMA dechunk",
            "",
            "Median milliseconds per call; x in " + ("bf16" if gpu else "fp32") + ", p in fp32, sorted chunk index "
            "per position. Speed-up is relative to the mamba_chunk_scan_combined reuse (forward / forward+backward).",
            "",
            "| B | L | M | D | implementation | forward ms | fwd+bwd ms | speed-up |",
            "|---|---|---|---|---|---|---|---|",
            *ema_rows,
            "",
            "## Routing",
            "",
            "Median milliseconds per call for probabilities and boundaries of q, k in "
            + ("bf16" if gpu else "fp32")
            + "; speed-up relative to the torch reference (forward / forward+backward).",
            "",
            "| B | L | D | implementation | forward ms | fwd+bwd ms | speed-up |",
            "|---|---|---|---|---|---|---|",
            *routing_rows,
            "",
            f"Command: `python benchmarks/kernels.py{' --quick' if args.quick else ''}"
            f"{' --out ' + str(args.out) if args.out else ''}`",
            "",
        ]
    )
    if args.out:
        write_text_atomic(args.out, report)
    print(report)


if __name__ == "__main__":
    main()
