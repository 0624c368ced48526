"""How much main-network room the padded layout computes beyond the chunks it holds.

A padded chunking level never waits for the device: it gives every row of the chunk sequence a width planned
from the widest rows of earlier batches (``hnet.ChunkCapacity``: +15 % headroom, a multiple of 64) and runs
a batch again when its chunks outgrow it. Every slot beyond a row's own count is computed and thrown away, so
the main network, most of an H-Net's FLOPs, pays for the plan. This script replays the plan over real
boundary counts and reports, per batch, the slots computed against the chunks held, next to the two
alternatives: the exact width (the widest row, one wait for the device per level) and the packed layout
(no padding at all, one wait per level).

Two sources of boundaries:

- a trained model's router on real DNA (``--model``, default the main job's model): windows of the demo
  region's human DNA, ``--batch`` x ``--length`` as that model trained;
- boundaries drawn independently at 1 / N per base (``model/drawn_routing.py``'s rule), at the paper model's
  micro-batch (64 x 1,024, N = 3), where a trained router's count per row is not available on a CPU.

    python benchmarks/chunk_capacity.py --out benchmarks/results/chunk-capacity-cpu.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hardware import cpu_name  # noqa: E402

from hnet_genomics import from_pretrained  # noqa: E402
from hnet_genomics.atomic import write_text_atomic  # noqa: E402
from hnet_genomics.data import demo  # noqa: E402
from hnet_genomics.data.genome import Genome  # noqa: E402
from hnet_genomics.model.hnet import ChunkCapacity  # noqa: E402


def replay(counts: list[torch.Tensor], length: int) -> dict:
    """The capacity plan over batches of per-row chunk counts, as ``HNet.forward`` applies it."""
    capacity = ChunkCapacity()
    planned = exact = held = reruns = 0
    for c in counts:
        need = int(c.max())
        width = capacity.width(length)
        if width is None:  # nothing seen yet: the level reads the exact count
            width = need
        elif need > width:  # run again with exactly enough room: both runs are computed
            reruns += 1
            width += need
        capacity.observe(need, length)
        planned += width * len(c)
        exact += need * len(c)
        held += int(c.sum())
    return {
        "batches": len(counts),
        "rows": len(counts[0]),
        "chunks_per_row": held / (len(counts) * len(counts[0])),
        "planned": planned / held,
        "exact": exact / held,
        "reruns": reruns,
    }


def trained_counts(model_dir: Path, batches: int, batch: int, length: int) -> list[torch.Tensor]:
    model = from_pretrained(model_dir).eval()
    genome = Genome(demo.HUMAN_FASTA)
    chrom, size = next(iter(genome.sizes.items()))
    g = torch.Generator().manual_seed(0)
    out = []
    with torch.inference_mode():
        for _ in range(batches):
            starts = torch.randint(0, size - length, (batch,), generator=g).tolist()
            ids = torch.tensor([list(genome.fetch(chrom, s, s + length).upper()) for s in starts], dtype=torch.long)
            boundary, _, valid = model.route(ids)[0]
            out.append((boundary & valid).sum(1))
    return out


def drawn_counts(batches: int, batch: int, length: int, n: float) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(batches):
        drawn = torch.rand(batch, length, generator=g) < 1.0 / n
        drawn[:, 0] = True  # a sequence start always opens a chunk
        out.append(drawn.sum(1))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=Path("results/demo/pretrain/hnet_1stage/model"))
    p.add_argument("--batches", type=int, default=200)
    p.add_argument("--batch", type=int, default=8, help="windows per batch for the trained model (its training)")
    p.add_argument("--length", type=int, default=1024)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    rows = []
    if (args.model / "config.json").is_file():
        counts = trained_counts(args.model, args.batches, args.batch, args.length)
        rows.append((f"trained router ({args.model}), real DNA", args.length, replay(counts, args.length)))
    for batch in (args.batch, 64):
        counts = drawn_counts(args.batches, batch, args.length, 3.0)
        rows.append(("drawn at N = 3", args.length, replay(counts, args.length)))
    lines = [
        "| boundaries | rows x length | batches | chunks per row | slots computed per chunk held: planned (padded) "
        "| exact width (a wait per level) | packed (a wait per level) | batches run again |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, length, r in rows:
        lines.append(
            f"| {name} | {r['rows']} x {length:,} | {r['batches']} | {r['chunks_per_row']:.1f} | {r['planned']:.3f} "
            f"| {r['exact']:.3f} | 1.000 | {r['reruns']} |"
        )
    table = "\n".join(lines)
    print(table)
    if args.out:
        write_text_atomic(
            args.out,
            "# Main-network room in the padded layout\n\n"
            f"Machine: {cpu_name()} (counts, not timings). Each row replays `ChunkCapacity` (headroom "
            f"{ChunkCapacity.HEADROOM}, multiples of {ChunkCapacity.MULTIPLE}, the widest row of the last "
            f"{ChunkCapacity.MEMORY} batches) over {args.batches} batches of real per-row chunk counts. *Slots "
            "computed per chunk held*: main-network positions computed (rows x width; a batch run again counts "
            "both runs) divided by the chunks the rows hold; 1.000 wastes nothing.\n\n"
            f"{table}\n\n"
            f"Command: `python benchmarks/chunk_capacity.py {' '.join(sys.argv[1:])}`\n",
        )


if __name__ == "__main__":
    main()
