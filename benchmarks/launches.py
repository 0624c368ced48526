"""Kernel launches and host synchronisations per training step, counted on a CPU along the GPU path.

A GPU step is launched by the host, kernel by kernel; when the kernels are small (the H-Net's main network
runs on a third of the positions) the host's launch rate, not the GPU, sets the pace, and every time the
host waits for the device the queue drains. Both are properties of the code, not of the machine, so they are
counted here without a GPU: ``kernels.trace.gpu_kernels_on_cpu`` hands CPU tensors to the GPU providers
(mamba-ssm's and our Triton kernels, counted, not run) and ``DeviceWork`` counts every aten op that would be
a launch on CUDA and every read of device memory (see ``kernels/trace.py`` for the launch model). Routers
are drawn at their target compression (N = 3 per level), so the main network carries a trained model's
load. The step is the training step: bf16 autocast forward and loss, backward, gradient clipping and a fused
AdamW step over the training parameter groups.

On a machine with CUDA the same step runs on the GPU with the real kernels, and the table gains the number of
kernels (and copies, fills) the CUDA profiler saw, which checks the launch model against the device.

    python benchmarks/launches.py --out benchmarks/results/launches-cpu.md
    python benchmarks/launches.py --models dna/hnet_1stage dna/mamba2_flops --out benchmarks/results/launches-gpu.md
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
from collections import Counter
from importlib import metadata
from pathlib import Path

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before anything imports triton: CPU tensors run kernels

import torch.nn.functional as F  # noqa: E402
from hardware import cpu_name  # noqa: E402

from hnet_genomics import build_model, load_config  # noqa: E402
from hnet_genomics.atomic import write_text_atomic  # noqa: E402
from hnet_genomics.data import demo  # noqa: E402
from hnet_genomics.data.genome import Genome  # noqa: E402
from hnet_genomics.kernels import dispatch, trace  # noqa: E402
from hnet_genomics.model.blocks import ResidualBlock  # noqa: E402
from hnet_genomics.model.drawn_routing import drawn_boundaries  # noqa: E402
from hnet_genomics.model.hnet import ChunkCapacity  # noqa: E402
from hnet_genomics.training.optim import param_groups  # noqa: E402

MODELS = ("dna/hnet_1stage", "dna/mamba2_flops", "dna/mamba2", "dna/transformer", "dna/hnet_2stage")
REFERENCE = "dna/mamba2_flops"
TARGET_RATIO = 1.3
FAMILIES = (
    "triton (mamba-ssm)",
    "triton (ours)",
    "matmul",
    "attention",
    "elementwise",
    "reduction",
    "copy / cast",
    "fill",
    "gather / scatter",
    "optimizer (multi-tensor)",
)
PHASES = ("forward", "backward", "optimizer")


class ScopedWork(trace.DeviceWork):
    """Also counts which launches of the forward happen inside a residual block."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.in_blocks = 0

    def add_launch(self, family: str, n: int = 1) -> None:
        if not self.paused and self.depth:
            self.in_blocks += n
        super().add_launch(family, n)


@contextlib.contextmanager
def block_scope(model: torch.nn.Module, work: ScopedWork):
    def enter(module, args):
        work.depth += 1

    def leave(module, args, out):
        work.depth -= 1

    handles = []
    for m in model.modules():
        if isinstance(m, ResidualBlock):
            handles += [m.register_forward_pre_hook(enter), m.register_forward_hook(leave)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def dna_windows(batch: int, length: int) -> torch.Tensor:
    genome = Genome(demo.HUMAN_FASTA)
    chrom, size = next(iter(genome.sizes.items()))
    g = torch.Generator().manual_seed(0)
    starts = torch.randint(0, size - length, (batch,), generator=g).tolist()
    return torch.tensor([list(genome.fetch(chrom, s, s + length).upper()) for s in starts], dtype=torch.long)


@contextlib.contextmanager
def cuda_kernels(seen: list[int]):
    """Appends the number of kernels, copies and fills the CUDA profiler saw in the block."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        yield
        torch.cuda.synchronize()
    seen.append(sum(e.device_type == torch.autograd.DeviceType.CUDA for e in prof.events()))


def count(name: str, layout: str, length: int, batch: int, steps: int, fused: bool, device: torch.device) -> dict:
    torch.manual_seed(0)
    config = load_config(name)
    model = build_model(config).to(device)
    groups = param_groups(model, config.model, config.train)
    for group in groups:
        group.pop("names")
    # what training picks on a GPU (training/optim.make_optimizer): fused; or torch's CUDA default, foreach
    optimizer = torch.optim.AdamW(groups, lr=config.train.lr, fused=fused or None, foreach=None if fused else True)
    ids = dna_windows(batch, length).to(device)
    if layout == "packed":
        inputs = {"cu_seqlens": torch.arange(0, batch * length + 1, length, dtype=torch.int32)}  # on the host
        ids = ids.reshape(1, -1)
    else:
        inputs = {"mask": torch.ones_like(ids, dtype=torch.bool)}
    blocks = sum(isinstance(m, ResidualBlock) for m in model.modules())
    totals = {phase: Counter() for phase in PHASES}
    syncs: Counter = Counter()
    sites: set[str] = set()
    in_blocks = 0
    profiled: list[int] = []
    on_gpu = device.type == "cuda"
    path = trace.gpu_kernels_on_cpu(execute=False) if not on_gpu else trace.triton_launches()
    chosen = dispatch.describe(device) if on_gpu else {}

    with path as emulated, drawn_boundaries(model, quiet=trace.paused):
        chosen = emulated or chosen
        for step in range(steps + 2):  # two warm-up steps: autotuning choices, chunk-room plans
            works = {phase: ScopedWork() for phase in PHASES}

            def seen_by_cuda(step: int = step) -> contextlib.AbstractContextManager:
                return cuda_kernels(profiled) if on_gpu and step >= 2 else contextlib.nullcontext()

            with seen_by_cuda(), works["forward"], block_scope(model, works["forward"]):
                with torch.autocast(device.type, dtype=torch.bfloat16):
                    out = model(ids, **inputs)
                    logits = out.logits[:, :-1].flatten(0, 1).float()
                    loss = F.cross_entropy(logits, ids[:, 1:].flatten())
                    loss = loss + config.train.ratio_loss_weight * out.ratio_loss
            with seen_by_cuda(), works["backward"]:
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
            with seen_by_cuda(), works["optimizer"]:
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0, foreach=True)
                optimizer.step()
            if step < 2:
                continue
            for phase, work in works.items():
                totals[phase] += work.launches
                syncs += work.syncs
                sites.update(work.sync_sites)
            in_blocks += works["forward"].in_blocks
    per_step = {phase: {k: v / steps for k, v in c.items()} for phase, c in totals.items()}
    families: Counter = Counter()
    for c in per_step.values():
        families.update(c)
    return {
        "name": name,
        "layout": layout,
        "blocks": blocks,
        "launches": sum(families.values()),
        "phases": {phase: sum(c.values()) for phase, c in per_step.items()},
        "families": families,
        "syncs": sum(syncs.values()) / steps,
        "sync_sites": sorted(sites),
        "forward_in_blocks": in_blocks / steps,
        "kernels": chosen,
        "profiled": sum(profiled) / steps if profiled else None,
    }


def row(r: dict, reference: float | None) -> str:
    ratio = f"{r['launches'] / reference:.2f}x" if reference else "-"
    phases = " / ".join(f"{r['phases'][p]:,.0f}" for p in PHASES)
    fwd_block = r["forward_in_blocks"] / max(r["blocks"], 1)
    other = r["phases"]["forward"] - r["forward_in_blocks"]
    families = " | ".join(f"{r['families'].get(f, 0):,.0f}" for f in FAMILIES)
    profiled = "" if r["profiled"] is None else f" {r['profiled']:,.0f} |"
    return (
        f"| {r['name']} | {r['layout']} | {r['blocks']} | {r['launches']:,.0f} |{profiled} {ratio} | "
        f"{r['syncs']:g} | {phases} | {fwd_block:.1f} | {other:,.0f} | {families} |"
    )


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--length", type=int, default=1024, help="bases per window (the shipped seq_len)")
    parser.add_argument("--batch", type=int, default=2, help="windows per step (launch counts do not grow with it)")
    parser.add_argument("--steps", type=int, default=2, help="counted steps (after two warm-up steps)")
    parser.add_argument("--packed", action="store_true", help="also count the packed layout of the H-Nets")
    parser.add_argument(
        "--optimizer",
        choices=("fused", "foreach"),
        default="fused",
        help="AdamW implementation: fused (what training picks on a GPU) or foreach (torch's CUDA default)",
    )
    parser.add_argument("--out", type=Path, help="write a markdown report here")
    parser.add_argument(
        "--quick", action="store_true", help=f"dna/hnet_1stage and {REFERENCE} only, one counted step (the GPU check)"
    )
    args = parser.parse_args()
    if args.quick:  # launch counts do not depend on the step count; the other models add minutes, not insight
        args.models = [m for m in args.models if m in ("dna/hnet_1stage", REFERENCE)]
        args.steps = 1
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    on_gpu = device.type == "cuda"
    if not on_gpu:  # count the GPU's control flow: padded levels plan their chunk room as on CUDA
        ChunkCapacity.PLAN_ON = ("cuda", "cpu")

    results = []
    for name in args.models:
        layouts = ["padded", "packed"] if args.packed and "hnet" in name else ["padded"]
        for layout in layouts:
            fused = args.optimizer == "fused"
            results.append(count(name, layout, args.length, args.batch, args.steps, fused, device))
            print(results[-1]["name"], layout, f"{results[-1]['launches']:,.0f} launches", flush=True)
    reference = next((r["launches"] for r in results if r["name"] == REFERENCE and r["layout"] == "padded"), None)
    kernels = results[0]["kernels"] if results else {}
    hnet = next((r for r in results if r["name"] == "dna/hnet_1stage" and r["layout"] == "padded"), None)
    verdict = ""
    if hnet and reference:
        ratio = hnet["launches"] / reference
        holds = "holds" if ratio <= TARGET_RATIO else "does not hold"
        ref = next(r for r in results if r["name"] == REFERENCE and r["layout"] == "padded")
        glue = (hnet["phases"]["forward"] - hnet["forward_in_blocks"]) - (
            ref["phases"]["forward"] - ref["forward_in_blocks"]
        )
        verdict = (
            f"dna/hnet_1stage issues {ratio:.2f}x the launches of {REFERENCE} per step: the target of "
            f"{TARGET_RATIO}x {holds}. Launches per step divided by residual blocks: "
            f"{hnet['launches'] / hnet['blocks']:.0f} for the H-Net, {reference / ref['blocks']:.0f} for "
            f"{REFERENCE}; the H-Net has {hnet['blocks']} blocks to {ref['blocks']}, and its chunking glue adds "
            f"{glue:.0f} forward launches. As long as launches grow with the number of blocks (no graph capture), "
            "the ratio stays near the ratio of the block counts."
        )
    header = "| model | layout | residual blocks | launches / step |"
    header += " kernels the CUDA profiler saw |" if on_gpu else ""
    header += " vs " + REFERENCE + " | host syncs / step | "
    header += "forward / backward / optimizer | forward launches per block | other forward launches | "
    header += " | ".join(FAMILIES) + " |"
    lines = [
        "# Kernel launches and host synchronisations per training step",
        "",
        f"Counted on: {torch.cuda.get_device_name(device) + ' (host: ' + cpu_name() + ')' if on_gpu else cpu_name()}"
        f", Python {platform.python_version()}, torch {torch.__version__}, triton "
        f"{version('triton')}, mamba-ssm {version('mamba-ssm')}, causal-conv1d {version('causal-conv1d')} "
        "(counts, not timings: the machine only decides how long counting takes).",
        "",
        ("Kernel set (on the GPU): " if on_gpu else "Kernel set (the GPU path, emulated on CPU tensors): ")
        + ", ".join(f"{op}: {impl}" for op, impl in kernels.items())
        + ".",
        "",
        f"Step: {args.batch} x {args.length:,} bases of real DNA, bf16 autocast forward and loss, backward, "
        f"gradient clipping (foreach), {args.optimizer} AdamW over the training parameter groups; routers drawn "
        f"at their target compression; mean of {args.steps} step{'s' if args.steps != 1 else ''} after two warm-up "
        "steps. A launch is an aten op that "
        "launches a CUDA kernel (views, allocations and host constants launch none; multi-tensor ops count as "
        "ATen's multi_tensor_apply chunks them) or a Triton kernel call. Host-to-device copies of the batch "
        "and of host-built indices are not seen on a CPU (two to four per step)."
        + (" The profiler counts every kernel, copy and fill the device ran in the step." if on_gpu else ""),
        "",
        header,
        "|" + "---|" * (10 + len(FAMILIES) + on_gpu),
        *(row(r, reference) for r in results),
        "",
    ]
    if verdict:
        lines += [verdict, ""]
    waits = [s for r in results for s in r["sync_sites"]]
    if waits:
        lines += ["Where the host waited:", "", *(f"- {s}" for s in sorted(set(waits))), ""]
    lines += [f"Command: `{' '.join(['python', 'benchmarks/launches.py', *sys.argv[1:]])}`", ""]
    report = "\n".join(lines)
    if args.out:
        write_text_atomic(args.out, report)
    print(report)


if __name__ == "__main__":
    main()
