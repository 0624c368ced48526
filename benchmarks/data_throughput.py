"""Loader throughput: windows/s and bases/s of random 8 kb training windows from the embedded genome.

The goal is >= 5 Mb/s, so that the data loader never starves training. Run:

    python benchmarks/data_throughput.py --out benchmarks/results/data_throughput-cpu.md
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

from torch.utils.data import DataLoader

from hnet_genomics.atomic import write_text_atomic
from hnet_genomics.config import DataConfig
from hnet_genomics.data import demo
from hnet_genomics.data.datasets import RandomWindowDataset, collate_padded
from hnet_genomics.data.genome import Genome
from hnet_genomics.data.intervals import make_splits

GOAL_BASES_PER_S = 5e6


def measure(fasta: Path, seq_len: int, batch_size: int, batches: int, workers: int) -> tuple[float, float]:
    """(windows/s, bases/s) over ``batches`` batches, after one warm-up batch (worker start-up excluded)."""
    genome = Genome(fasta)
    cfg = DataConfig()  # defaults: upper-case soft-masking, N masked from the loss, RC p = 0.5
    train = make_splits(genome, cfg)["train"]
    ds = RandomWindowDataset(genome, train, seq_len, cfg, seed=0, batch_size=batch_size)
    loader = iter(DataLoader(ds, batch_size=batch_size, num_workers=workers, collate_fn=collate_padded))
    next(loader)
    start = time.perf_counter()
    windows = 0
    for _ in range(batches):
        windows += next(loader)["input_ids"].shape[0]
    elapsed = time.perf_counter() - start
    return windows / elapsed, windows * seq_len / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fasta", type=Path, default=demo.HUMAN_FASTA)
    parser.add_argument("--seq-len", type=int, default=8192)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--batches", type=int, default=300)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--out", type=Path, help="write a markdown table here")
    args = parser.parse_args()

    rows = []
    for workers in args.workers:
        wps, bps = measure(args.fasta, args.seq_len, args.batch_size, args.batches, workers)
        rows.append(f"| {workers} | {wps:,.0f} | {bps / 1e6:.1f} | {'yes' if bps >= GOAL_BASES_PER_S else 'NO'} |")
        print(rows[-1], flush=True)
    hardware = f"{os.cpu_count()}-core {platform.machine()} CPU"
    load = os.getloadavg()[0]
    report = "\n".join(
        [
            "# Data loader throughput",
            "",
            f"Random {args.seq_len:,}-base training windows (RandomWindowDataset + DataLoader + collate_padded, "
            f"batch {args.batch_size}, {args.batches} batches after one warm-up batch) from "
            f"`{args.fasta.name}` (bgzip), default DataConfig. Hardware: {hardware} "
            f"(1-minute load average {load:.1f} at the end of the run).",
            "",
            "| workers | windows/s | Mb/s | >= 5 Mb/s |",
            "|---|---|---|---|",
            *rows,
            "",
            "Command: `python benchmarks/data_throughput.py --out benchmarks/results/data_throughput-cpu.md`",
            "",
            "A worker hands each batch to the main process through shared memory, which on two cores costs",
            "about as much CPU as building the batch, so the single-process loader is the faster one here; on",
            "a node with spare cores each worker adds its own fetch/encode throughput.",
            "",
        ]
    )
    if args.out:
        write_text_atomic(args.out, report)
    print(report)


if __name__ == "__main__":
    main()
