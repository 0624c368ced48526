"""Training-step speed, MFU and peak memory of the H-Net and its baselines, side by side in one process.

Each config trains as ``pretrain`` trains it, minus Lightning: its shipped micro-batch (``batch_size_for``,
64 x 1,024 bases for the paper-scale configs) of real DNA windows from the embedded human region, the loss
(next-base NLL + ratio-loss weight x ratio loss), the optimizer (per-stage AdamW groups of
``training/optim.py``), its schedule and gradient clipping, bf16 autocast with TF32 on a GPU.

H-Net boundaries are drawn at each level's target rate (``model/drawn_routing.py``): routing projections and
kernel, downsampling, the main network on ~L / N chunks, EMA dechunk and ratio loss all do the work they do
once the router has learned its target; a fresh router would time another model (about 2 bases per chunk on
a CPU, about 1,024 on an H200 in bf16). ``--routing fresh`` times the untouched router instead. The measured
compression is printed, and MFU is refused when it is more than 20 % off the target.

Timing: the first step alone ("first step", where kernels compile and autotune), ``--warmup`` more steps, then
``--steps`` timed steps (CUDA events per step on a GPU, wall clock on a CPU, whose ops are synchronous).
bases/s = bases of the timed steps / their time; MFU = ``HNetLM.flops_per_base`` at the measured compression
x bases/s / the device's dense bf16 peak (datasheet, named in the report); peak memory = the most allocated
during the timed steps, beside the pretraining memory check's estimate for the same micro-batch. The report is
rewritten after every config, so a run cut short keeps what it measured.

    python benchmarks/train_step.py --out benchmarks/results/gpu-train-step.md     # on a GPU: the four models
    python benchmarks/train_step.py --device cpu --out benchmarks/results/train_step-cpu.md   # tiny configs
    python benchmarks/train_step.py --device cpu --quick                                 # the harness only
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from hardware import cpu_name, dense_bf16_peak

from hnet_genomics import load_config
from hnet_genomics.atomic import write_text_atomic
from hnet_genomics.config import Config
from hnet_genomics.data import demo
from hnet_genomics.data.datasets import RandomWindowDataset, collate_packed, collate_padded
from hnet_genomics.data.intervals import make_splits
from hnet_genomics.errors import HNetError
from hnet_genomics.kernels import dispatch
from hnet_genomics.model.drawn_routing import drawn_boundaries
from hnet_genomics.model.lm import HNetLM
from hnet_genomics.training.datamodule import batch_size_for
from hnet_genomics.training.module import model_inputs
from hnet_genomics.training.objective import next_base_nll, target_weights
from hnet_genomics.training.optim import make_optimizer, make_scheduler
from hnet_genomics.training.resources import measure_training_memory
from hnet_genomics.training.sources import open_source

GPU_CONFIGS = ["dna/hnet_1stage", "dna/mamba2_flops", "dna/mamba2", "dna/transformer"]
CPU_CONFIGS = ["dna/hnet_1stage_tiny", "dna/mamba2_tiny_flops", "dna/mamba2_tiny", "dna/transformer_tiny"]
COMPRESSION_TOLERANCE = 0.2  # MFU only when every level's measured compression is within 20 % of its target
DISTINCT_BATCHES = 4  # batches cycled through the steps (drawn on the host once, before timing)
MAX_EXTRA_WARMUP = 40  # warm-up steps beyond --warmup while a level's chunk count has not shown both parities
HEADER = [
    "| config | params | micro-batch | compression (target) | first step s | warm-up s (steps) | step ms (median) "
    "| bases/s | model TFLOP/s | MFU | peak GiB | memory check's estimate GiB |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
]


def device_label(device: torch.device) -> str:
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"{torch.cuda.get_device_name(device)} {props.total_memory / 1e9:.0f} GB (host: {cpu_name()})"
    return cpu_name()


def batches(config: Config, micro_batch: int, device: torch.device) -> list[dict]:
    """``DISTINCT_BATCHES`` training batches of the config's windows and layout, on ``device``."""
    tc = config.train
    source = open_source(demo.HUMAN_FASTA, config.data)
    splits = make_splits(source, config.data)
    stream = RandomWindowDataset(source, splits["train"], tc.seq_len, config.data, tc.seed, batch_size=micro_batch)
    collate = collate_packed if tc.layout == "packed" else collate_padded
    out = []
    for b in range(DISTINCT_BATCHES):
        items = [stream.window(b * micro_batch + i) for i in range(micro_batch)]
        batch = collate(items)
        out.append({k: v.to(device) for k, v in batch.items() if isinstance(v, torch.Tensor)})
    return out


class Clock:
    """Per-step times: CUDA events read once at the end on a GPU, wall clock on a CPU."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.marks: list = []

    def mark(self) -> None:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self.marks.append(event)
        else:
            self.marks.append(time.perf_counter())

    def seconds(self) -> list[float]:
        if self.cuda:
            torch.cuda.synchronize()
            return [a.elapsed_time(b) / 1e3 for a, b in zip(self.marks, self.marks[1:])]
        return [b - a for a, b in zip(self.marks, self.marks[1:])]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def mfu_cell(measured: list[float], targets: list[float], flops: float, peak: float | None, gpu: bool) -> str:
    """MFU as the table shows it; refused when a level's measured compression is more than
    ``COMPRESSION_TOLERANCE`` off its target (the FLOPs would then count another model's work)."""
    off = [m / t - 1 for m, t in zip(measured, targets)]
    if any(abs(o) > COMPRESSION_TOLERANCE for o in off):
        return "refused: compression " + " / ".join(f"{o:+.0%}" for o in off) + " off target"
    if peak is None:
        return "n/a (no bf16 peak known)" if gpu else "n/a (CPU)"
    return f"{100 * flops / peak:.1f} %"


def bench_config(
    name: str, device: torch.device, overrides: list[str], warmup: int, steps: int, routing: str
) -> tuple[str, dict]:
    """One row of the table and its numbers."""
    config = load_config(name, overrides)
    tc = config.train
    micro = batch_size_for(config)
    torch.manual_seed(tc.seed)
    model = HNetLM(config.model).to(device)
    model.train()
    gpu = device.type == "cuda"
    precision = "bf16" if gpu else "fp32"
    optimizer = make_optimizer(model, config.model, tc)
    scheduler = make_scheduler(optimizer, tc)
    data = batches(config, micro, device)
    levels = len(config.model.target_compression)
    counts = torch.zeros(levels + 1, dtype=torch.float64, device=device)  # real tokens per level, timed steps
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=gpu)
    bases_per_step = sum(int(b["mask"].sum()) for b in data) / len(data)

    def step(i: int, count: bool) -> list[int]:
        """One training step; the padded chunk-sequence width of each chunking level (host-side shapes)."""
        batch = data[i % len(data)]
        with autocast:
            out = model(batch["input_ids"], **model_inputs(batch))
            nll, n = next_base_nll(out.logits, batch["input_ids"], target_weights(batch))
            loss = nll / n.clamp(min=1) + tc.ratio_loss_weight * out.ratio_loss
        if count:
            counts.add_(torch.stack([m.sum() for m in out.level_masks]).double())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if tc.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        optimizer.step()
        scheduler.step()
        return [m.shape[1] for m in out.level_masks[1:]]

    drawn = drawn_boundaries(model, seed=tc.seed) if routing == "drawn" else contextlib.nullcontext()
    try:
        with drawn:
            synchronize(device)
            t0 = time.perf_counter()
            step(0, count=False)
            synchronize(device)
            first = time.perf_counter() - t0
            # Triton compiles a kernel again for an integer argument that is a multiple of 16 and one that is not:
            # the chunk count of a level varies from step to step, so on a GPU the warm-up goes on (up to a cap)
            # until every level has shown both, lest a compile land among the timed steps.
            seen: list[set[bool]] = [set() for _ in range(levels)]
            warmed = 0
            while warmed < warmup or (gpu and any(len(s) < 2 for s in seen) and warmed < warmup + MAX_EXTRA_WARMUP):
                for level, width in enumerate(step(1 + warmed, count=False)):
                    seen[level].add(width % 16 == 0)
                warmed += 1
            synchronize(device)
            warm = time.perf_counter() - t0 - first
            if gpu:
                torch.cuda.reset_peak_memory_stats(device)
            clock = Clock(device)
            clock.mark()
            for i in range(steps):
                step(1 + warmed + i, count=True)
                clock.mark()
            times = clock.seconds()
    except torch.cuda.OutOfMemoryError:
        params = f"{model.num_parameters() / 1e6:.1f} M"
        return f"| {name} | {params} | {micro} x {tc.seq_len:,} | out of memory |" + " |" * 8, {"config": name}
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if gpu else None
    estimate = measure_training_memory(model, tc.seq_len, precision, seed=tc.seed)  # what pretraining plans with
    tokens = counts.tolist()
    measured = [a / max(b, 1.0) for a, b in zip(tokens, tokens[1:])]
    targets = [float(t) for t in config.model.target_compression]
    bases_per_s = steps * bases_per_step / sum(times)
    flops = model.flops_per_base(tc.seq_len, measured or None, training=True) * bases_per_s
    peak_flops = dense_bf16_peak(torch.cuda.get_device_name(device)) if gpu else None
    mfu = mfu_cell(measured, targets, flops, peak_flops[0] if peak_flops else None, gpu)
    compression = " / ".join(f"{m:.2f} ({t:g})" for m, t in zip(measured, targets)) if measured else "- (isotropic)"
    row = (
        f"| {name} | {model.num_parameters() / 1e6:.1f} M | {micro} x {tc.seq_len:,} | {compression} | "
        f"{first:.1f} | {warm:.1f} ({warmed}) | {1e3 * statistics.median(times):.1f} | {bases_per_s:,.0f} | "
        f"{flops / 1e12:.3g} | {mfu} | {'n/a' if peak is None else f'{peak:.1f}'} | "
        f"{estimate.step_bytes(micro) / 2**30:.1f} |"
    )
    numbers = {"config": name, "bases_per_second": bases_per_s, "compression": measured, "peak_gib": peak}
    return row, numbers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--configs", nargs="+", help="default: the paper-scale four on a GPU, their tiny versions")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per config (at least 20 for a report)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps after the first")
    parser.add_argument("--routing", choices=["drawn", "fresh"], default="drawn")
    parser.add_argument("--layout", choices=["padded", "packed"], default="padded")
    parser.add_argument(
        "--set", action="append", default=[], help="config override for every config, e.g. train.seq_len=8192"
    )
    parser.add_argument("--quick", action="store_true", help="2 windows of 256 bases, 3 timed steps: the harness")
    parser.add_argument("--out", type=Path, help="write the markdown report here (rewritten after each config)")
    args = parser.parse_args(argv)
    try:
        device = torch.device(args.device)
    except RuntimeError:
        print(f"train_step: --device {args.device}: not a torch device", file=sys.stderr)
        return 2
    gpu = device.type == "cuda"
    if gpu and not torch.cuda.is_available():
        print("train_step: --device cuda: torch sees no CUDA GPU", file=sys.stderr)
        return 2
    if args.steps < 1 or args.warmup < 0:
        print("train_step: --steps must be at least 1 and --warmup at least 0", file=sys.stderr)
        return 2
    if gpu:
        if device.index is None:  # "cuda": the current device, by its index (set_device and friends need one)
            device = torch.device("cuda", torch.cuda.current_device())
        torch.cuda.set_device(device)
        torch.set_float32_matmul_precision("high")  # as pretrain: TF32 for what autocast leaves in fp32
    configs = args.configs or (GPU_CONFIGS if gpu else CPU_CONFIGS)
    overrides = [f"train.layout={args.layout}", *args.set]
    steps, warmup = args.steps, args.warmup
    if args.quick:
        overrides += ["train.seq_len=256", "train.batch_size=2", "train.tokens_per_batch=null"]
        steps, warmup = min(steps, 3), min(warmup, 1)
    for name in configs:  # every config and override checked before anything runs
        try:
            load_config(name, overrides)
        except HNetError as e:
            print(f"train_step: {e}", file=sys.stderr)
            return 2
    label = device_label(device)
    peak = dense_bf16_peak(torch.cuda.get_device_name(device)) if gpu else None
    kernels = ", ".join(f"{op}: {impl}" for op, impl in dispatch.describe(device).items())
    rows: list[str] = []
    numbers: dict[str, dict] = {}

    def report() -> str:
        ratio = ""
        hnet = next((v for k, v in numbers.items() if "hnet_1stage" in k and "bases_per_second" in v), None)
        flops_partner = next((v for k, v in numbers.items() if "mamba2" in k and "flops" in k), None)
        if hnet and flops_partner and "bases_per_second" in flops_partner:
            ratio = (
                f"H-Net 1-stage / FLOP-matched Mamba-2 bases/s: "
                f"**{hnet['bases_per_second'] / flops_partner['bases_per_second']:.2f}x** (issue #22 asks for "
                f"at least 0.9x on an H100/H200)."
            )
        command = "python benchmarks/train_step.py " + " ".join(argv if argv is not None else sys.argv[1:])
        return "\n".join(
            [
                "# Training step per model, at the compression training reaches",
                "",
                f"Hardware: {label}; torch {torch.__version__}"
                + ("" if gpu else f"; 1-minute load average {os.getloadavg()[0]:.1f} at the end")
                + ".",
                "",
                f"Kernels: {kernels}.",
                "",
                (
                    "bf16 autocast, TF32, each config's shipped micro-batch, "
                    if gpu
                    else "fp32 on the CPU (the tiny configs: what the harness and the torch path do, not a GPU claim), "
                )
                + f"{args.layout} layout, the optimizer, schedule, clipping and loss pretraining uses. "
                + (
                    "H-Net boundaries drawn at each level's target rate (`model/drawn_routing.py`). "
                    if args.routing == "drawn"
                    else "H-Net boundaries from the freshly initialised router (`--routing fresh`). "
                )
                + f"{steps} timed steps after the first step and at least {warmup} more warm-up steps (on a GPU "
                "until each level's chunk count has been a multiple of 16 and not, the two variants Triton compiles); "
                "first step and warm-up in seconds (compiles and autotuning happen there), step time the median, "
                "bases/s over all timed steps. MFU: "
                "`HNetLM.flops_per_base` at the measured compression x bases/s over "
                + (
                    f"the {peak[1]} dense bf16 peak, {peak[0] / 1e12:.0f} TFLOP/s (datasheet)"
                    if peak
                    else "the device's dense bf16 peak (none known for this device: no MFU)"
                )
                + f"; refused when a level's compression is more than {COMPRESSION_TOLERANCE:.0%} off its target. "
                "Peak: the most allocated during the timed steps; the memory check's estimate is what "
                "`pretrain` plans this micro-batch with (measured at 0.8 x the target compression).",
                "",
                *HEADER,
                *rows,
                "",
                ratio,
                "",
                f"Command: `{command.strip()}`",
                "",
            ]
        )

    print(f"device: {label}\nkernels: {kernels}", flush=True)
    print("\n".join(HEADER), flush=True)
    for name in configs:
        row, result = bench_config(name, device, overrides, warmup, steps, args.routing)
        gc.collect()  # the config's model, optimizer state and batches go before the next one's
        if gpu:
            torch.cuda.empty_cache()
        rows.append(row)
        numbers[name] = result
        print(row, flush=True)
        if args.out:
            write_text_atomic(args.out, report())
    text = report()
    if args.out:
        write_text_atomic(args.out, text)
    if not math.isfinite(sum(v.get("bases_per_second", 0.0) for v in numbers.values())):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
