"""Kernel and training-step benchmarks: the EMA dechunk three ways, routing two ways, a training step per model.

EMA dechunk (B rows, L positions, M = L / compression chunks, D channels): our fused Triton kernel vs the
reference H-Net's reuse of mamba-ssm's ``mamba_chunk_scan_combined`` (+ gather) vs the chunked torch path; B = 1
is the packed layout (one row of 1,024-base sequences, a reset at every sequence start), B = 8 the padded one.
Routing (q, k of B x L x D): the fused Triton kernel vs the torch reference.
Training step (forward, backward, AdamW; bf16 autocast on CUDA): bases/s, MFU (analytic matmul FLOPs at the
measured compression over the GPU's dense bf16 peak) and peak memory, for the H-Net and the isotropic baselines.

On CUDA it runs the real sizes; on CPU only the torch paths at tiny sizes (a smoke test, not a GPU claim):

    python benchmarks/kernels.py --out benchmarks/results/kernels-cpu.md
    python benchmarks/kernels.py --out benchmarks/results/gpu-h100.md       # on a GPU machine
"""

from __future__ import annotations

import argparse
import functools
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from hardware import cpu_name

from hnet_genomics import build_model, load_config
from hnet_genomics.atomic import write_text_atomic
from hnet_genomics.data import demo
from hnet_genomics.data.genome import Genome
from hnet_genomics.kernels import dispatch
from hnet_genomics.kernels import ema as ema_k

DENSE_BF16_PEAK = {"H100": 989e12, "H200": 989e12, "A100": 312e12}  # SXM datasheet numbers, no sparsity


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


def dna_windows(batch: int, length: int, step: int) -> torch.Tensor:
    genome = Genome(demo.HUMAN_FASTA)
    chrom, size = next(iter(genome.sizes.items()))
    g = torch.Generator().manual_seed(step)
    starts = torch.randint(0, size - length, (batch,), generator=g).tolist()
    return torch.tensor([list(genome.fetch(chrom, s, s + length).upper()) for s in starts], dtype=torch.long)


def bench_train(device: torch.device, name: str, length: int, batch: int, steps: int) -> str:
    torch.manual_seed(0)
    model = build_model(load_config(name)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = dna_windows(batch, length, 0).to(device)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    ratios: list[float] = []

    def step() -> None:
        with autocast:
            out = model(ids)
            loss = F.cross_entropy(out.logits[:, :-1].flatten(0, 1).float(), ids[:, 1:].flatten())
            loss = loss + 0.03 * out.ratio_loss
        ratios[:] = out.compression_ratios()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        seconds = timed(step, device, steps, warmup=2)
    except torch.cuda.OutOfMemoryError:
        return f"| {name} | {length:,} | {batch} | out of memory | | | |"
    bases_per_s = batch * length / seconds
    flops = model.flops_per_base(length, ratios or None, training=True) * bases_per_s
    peak = next(
        (v for k, v in DENSE_BF16_PEAK.items() if device.type == "cuda" and k in torch.cuda.get_device_name(device)),
        None,
    )
    mfu = f"{100 * flops / peak:.1f}%" if peak else "n/a"
    memory = f"{torch.cuda.max_memory_allocated(device) / 2**30:.1f}" if device.type == "cuda" else "n/a"
    compression = " / ".join(f"{r:.2f}" for r in ratios) or "-"
    return f"| {name} | {length:,} | {batch} | {bases_per_s:,.0f} | {mfu} | {memory} | {compression} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write a markdown report here")
    parser.add_argument("--reps", type=int, default=None, help="timed repetitions (default 20 GPU, 3 CPU)")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    gpu = device.type == "cuda"
    reps = args.reps or (20 if gpu else 3)

    print(f"device: {device_name(device)}", flush=True)
    shapes = [(1, 8192), (1, 65536), (8, 8192), (8, 65536)] if gpu else [(1, 2048), (2, 1024)]
    d = 512 if gpu else 64
    ema_rows = bench_ema(device, shapes, d, compressions=[3, 1], reps=reps)
    routing_rows = bench_routing(device, shapes, d, reps=reps)
    if gpu:
        configs = ["dna/hnet_1stage", "dna/mamba2", "dna/transformer"]
        sizes = [(8192, 8), (16384, 4), (32768, 2), (65536, 1)]  # 64 k bases per step
    else:
        configs = ["dna/hnet_1stage_tiny", "dna/mamba2_tiny", "dna/transformer_tiny"]
        sizes = [(512, 1), (1024, 1)]
    train_rows = []
    for name in configs:
        for length, batch in sizes:
            train_rows.append(bench_train(device, name, length, batch, steps=max(3, reps // 4)))
            print(train_rows[-1], flush=True)

    kernels = ", ".join(f"{op}: {impl}" for op, impl in dispatch.describe(device).items())
    report = "\n".join(
        [
            "# Kernel and training-step benchmarks",
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
            "## Training step",
            "",
            (
                "bf16 autocast, AdamW, real DNA windows from the embedded human region. MFU counts matmul FLOPs at "
                "the measured compression (`HNetLM.flops_per_base`) against the dense bf16 peak of the device."
                if gpu
                else "fp32 on CPU with the tiny configs: a smoke test of the harness, not a throughput claim."
            ),
            "",
            "| config | L | batch | bases/s | MFU | peak GiB | compression |",
            "|---|---|---|---|---|---|---|",
            *train_rows,
            "",
            f"Command: `python benchmarks/kernels.py{' --out ' + str(args.out) if args.out else ''}`",
            "",
        ]
    )
    if args.out:
        write_text_atomic(args.out, report)
    print(report)


if __name__ == "__main__":
    main()
