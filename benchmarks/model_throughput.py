"""Training (forward+backward) and inference throughput and peak memory of the tiny H-Net and its baselines.

Each (mode, model, length) runs in its own process so peak resident memory is that model's alone; a cell
that runs past --timeout is reported as such rather than left out.

    python benchmarks/model_throughput.py --lengths 1024 4096 --out benchmarks/results/model_throughput-cpu.md
    python benchmarks/model_throughput.py --hnet-model results/demo/pretrain/hnet_1stage/model   # trained routing
    python benchmarks/model_throughput.py --modes train infer --lengths 1024 4096 16384 65536 --tokens 65536 \
        --models hnet_1stage hnet_2stage mamba2 transformer --out benchmarks/results/length_sweep-cpu.md

An H-Net at initialisation compresses by ~2 rather than its target N = 3; a trained model (``--hnet-model``)
shows the cost at the compression it actually learned, which is what the 0.6x goal is about.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from hardware import cpu_name

MODELS = {
    "hnet_1stage": "dna/hnet_1stage_tiny",
    "hnet_2stage": "dna/hnet_2stage_tiny",
    "mamba2": "dna/mamba2_tiny",
    "transformer": "dna/transformer_tiny",
}


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(
    config: str,
    model_dir: str | None,
    length: int,
    tokens: int,
    repeats: int,
    threads: int,
    mode: str = "train",
    device: str = "cpu",
    precision: str = "auto",
) -> dict:
    import torch

    from hnet_genomics import build_model, from_pretrained, load_config
    from hnet_genomics.data import demo
    from hnet_genomics.data.genome import Genome
    from hnet_genomics.devices import inference_precision, resolve_precision

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = from_pretrained(model_dir) if model_dir else build_model(load_config(config))
    batch = max(tokens // length, 1)
    genome = Genome(demo.HUMAN_FASTA)
    chrom = next(iter(genome.sizes))
    seq = genome.fetch(chrom, 100_000, 100_000 + batch * length).upper()
    ids = torch.tensor(list(seq), dtype=torch.long).view(batch, length).to(device)
    model.to(device)
    cuda = torch.device(device).type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    if mode == "infer":
        model.eval()
    base_rss = rss_mb()
    base_gpu = torch.cuda.memory_allocated() if cuda else 0
    precision = resolve_precision(precision, device)
    times, ratios = [], []
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        if mode == "train":
            with inference_precision(device, precision):  # as bf16-mixed training (benchmarks/kernels.py too)
                out = model(ids)
                loss = torch.nn.functional.cross_entropy(
                    out.logits[:, :-1].reshape(-1, 256).float(), ids[:, 1:].reshape(-1)
                )
            (loss + 0.03 * out.ratio_loss).backward()
            model.zero_grad(set_to_none=True)
        else:
            with torch.inference_mode(), inference_precision(device, precision):
                out = model(ids)
        sync()
        if i:  # the first pass warms up allocators and caches
            times.append(time.perf_counter() - t0)
        ratios = out.compression_ratios()
        del out
    step = min(times)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if cuda:  # on a GPU the memory that matters is the device's
        peak, base_rss = torch.cuda.max_memory_allocated() / 2**20, base_gpu / 2**20
    return {
        "params": model.num_parameters(),
        "batch": batch,
        "length": length,
        "step_s": step,
        "precision": precision,
        "bases_per_s": batch * length / step,
        "compression": ratios,
        "peak_rss_mb": peak,
        "working_mb": peak - base_rss,
    }


def gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096])
    ap.add_argument("--tokens", type=int, default=8192, help="bases per step (batch = tokens / length)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", nargs="+", default=["hnet_1stage", "mamba2", "transformer"], choices=list(MODELS))
    ap.add_argument("--hnet-model", help="a trained 1-stage H-Net (saved model folder) instead of a fresh one")
    ap.add_argument(
        "--modes",
        nargs="+",
        default=["train"],
        choices=["train", "infer"],
        help="train: forward + backward; infer: forward under torch.inference_mode",
    )
    ap.add_argument("--timeout", type=float, default=600, help="seconds per (mode, model, length) cell")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (kernels chosen by HNET_KERNELS, default auto)")
    ap.add_argument("--precision", default="auto", help="auto (bf16 autocast on CUDA, fp32 on CPU), bf16, tf32, fp32")
    ap.add_argument("--out", help="write the table as markdown here")
    ap.add_argument("--_child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        spec = json.loads(args._child)
        print(json.dumps(measure(**spec)))
        return

    rows = []
    for mode in args.modes:
        for length in args.lengths:
            for name in args.models:
                spec = {
                    "config": MODELS[name],
                    "model_dir": args.hnet_model if name == "hnet_1stage" else None,
                    "length": length,
                    "tokens": max(args.tokens, length),
                    "repeats": args.repeats,
                    "threads": args.threads,
                    "mode": mode,
                    "device": args.device,
                    "precision": args.precision,
                }
                try:
                    res = subprocess.run(
                        [sys.executable, __file__, "--_child", json.dumps(spec)],
                        capture_output=True,
                        text=True,
                        check=True,
                        timeout=args.timeout,
                    )
                    r = json.loads(res.stdout.strip().splitlines()[-1])
                except subprocess.TimeoutExpired:
                    r = {"length": length, "timeout": True}
                rows.append({"model": name, "mode": mode, **r})
                print(json.dumps(rows[-1]), flush=True)
    machine = (
        f"{cpu_name()}, {args.threads} thread(s)"
        if args.device == "cpu"
        else f"{gpu_name()} ({args.device}, {rows[0].get('precision', args.precision) if rows else ''})"
    )
    lines = [
        f"# Model throughput, {machine}",
        "",
        f"Command: `python benchmarks/model_throughput.py {' '.join(sys.argv[1:])}`",
        "",
        "*train*: forward + backward of next-base cross-entropy (+ ratio loss); *infer*: forward only. "
        "*step vs Mamba-2*: time per base relative to the isotropic Mamba-2 at the same mode and length. "
        "*peak RSS / working MB* (GPU: peak allocated device memory / minus what model and batch hold): "
        "peak resident memory, and that minus the resident memory with model and batch loaded "
        f"(activations, gradients, workspace). A cell still running after {args.timeout:.0f} s is marked "
        "*timeout*.",
        "",
        "| mode | model | params | L | batch | bases/s | step (s) | step vs Mamba-2 | peak RSS (MB) | "
        "working MB | compression |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r.get("timeout"):
            lines.append(f"| {r['mode']} | {r['model']} | | {r['length']} | | timeout | > {args.timeout:.0f} | | | | |")
            continue
        ref = next(
            (
                x
                for x in rows
                if x["model"] == "mamba2"
                and x["mode"] == r["mode"]
                and x["length"] == r["length"]
                and not x.get("timeout")
            ),
            None,
        )
        rel = f"{(r['step_s'] / r['batch']) / (ref['step_s'] / ref['batch']):.2f}x" if ref else "-"
        comp = ", ".join(f"{c:.2f}" for c in r["compression"]) or "-"
        lines.append(
            f"| {r['mode']} | {r['model']} | {r['params'] / 1e6:.2f} M | {r['length']} | {r['batch']} | "
            f"{r['bases_per_s']:,.0f} | {r['step_s']:.2f} | {rel} | {r['peak_rss_mb']:.0f} | "
            f"{r['working_mb']:.0f} | {comp} |"
        )
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(table)


if __name__ == "__main__":
    main()
