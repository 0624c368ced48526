"""What scoring a variant costs: model windows per variant and variants per CPU-second, at three densities.

Variant sets, all on real sequence of the embedded HLA region: ``sparse``, simulated SNVs and indels spread
over the region (``simulate_variants.py``, seed 1: about one variant per 20 kb, so no two share a window);
``every10``, one SNV every 10 bp over a stretch (a dense call set); ``saturation``, all three SNVs at every
base of a stretch (what ``ism`` scores). Each is scored by ``score_vcf`` with both strands at the model's
window. *windows per variant*: bases the model ran (prefixes and continuations, or whole windows) divided by
the window length and by the variants scored. The script runs against whichever ``hnet_genomics`` it imports,
so an earlier checkout can be measured with the same inputs (``--json``; ``inference_throughput.py
--baseline`` does that in a subprocess). Run:

    python benchmarks/variant_cost.py --model results/demo/pretrain/hnet_1stage/model --threads 1
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from simulate_variants import simulate, to_vcf  # noqa: E402

SETS = ("sparse", "every10", "saturation")
STRETCH = 1_000_000  # 0-based start of the dense sets


def variant_sets(genome, chrom: str, every10_bp: int, saturation_bp: int, sparse: int) -> dict[str, str]:
    """VCF text of each set (module docstring)."""
    size = genome.sizes[chrom]
    rng = np.random.default_rng(1)
    out = {"sparse": to_vcf(simulate(genome, chrom, sparse, sparse, 0, False, seed=1), chrom, size, "variant_cost")}
    seq = genome.fetch(chrom, STRETCH, STRETCH + max(every10_bp, saturation_bp)).upper().decode()
    header = (
        f"##fileformat=VCFv4.2\n##contig=<ID={chrom},length={size}>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
    )
    rows = []
    for i in range(0, every10_bp, 10):
        alt = rng.choice([b for b in "ACGT" if b != seq[i]])
        rows.append(f"{chrom}\t{STRETCH + i + 1}\t.\t{seq[i]}\t{alt}\t.\t.\t.")
    out["every10"] = header + "\n".join(rows) + "\n"
    rows = [
        f"{chrom}\t{STRETCH + i + 1}\t.\t{seq[i]}\t{','.join(b for b in 'ACGT' if b != seq[i])}\t.\t.\t."
        for i in range(saturation_bp)
    ]
    out["saturation"] = header + "\n".join(rows) + "\n"
    return out


def measure(model_dir: Path, threads: int, every10_bp: int, saturation_bp: int, sparse: int) -> dict:
    """Per set: variants scored, CPU and wall seconds, bases the model ran, the window length."""
    from hnet_genomics import from_pretrained
    from hnet_genomics.data import demo
    from hnet_genomics.data.genome import Genome
    from hnet_genomics.export.variant_scores import score_vcf
    from hnet_genomics.inference.engine import InferenceEngine
    from hnet_genomics.inference.variants import VariantScoringConfig

    torch.set_num_threads(threads)
    model = from_pretrained(model_dir)
    window = model.trained_context or 1024
    genome = Genome(demo.HUMAN_FASTA)
    chrom = next(iter(genome.sizes))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in variant_sets(genome, chrom, every10_bp, saturation_bp, sparse).items():
            vcf = Path(tmp) / f"{name}.vcf"
            vcf.write_text(text)
            engine = InferenceEngine(model, batch_size=32)
            t0, c0 = time.perf_counter(), time.process_time()
            s = score_vcf(engine, genome, vcf, Path(tmp) / f"{name}.out.vcf.gz", VariantScoringConfig(window, "both"))
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            results[name] = {"variants": s.scored, "cpu_s": cpu, "wall_s": wall, "model_bases": engine.timing.bases}
    return {"window": window, "sets": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--every10-bp", type=int, default=3_000, help="stretch of the one-SNV-per-10-bp set")
    parser.add_argument("--saturation-bp", type=int, default=64, help="stretch of the all-SNVs set")
    parser.add_argument("--sparse", type=int, default=20, help="SNVs per annotation class (and indels) simulated")
    parser.add_argument("--json", action="store_true", help="print the measurements as JSON only")
    args = parser.parse_args()
    result = measure(args.model, args.threads, args.every10_bp, args.saturation_bp, args.sparse)
    if args.json:
        print(json.dumps(result))
        return
    for name, r in result["sets"].items():
        print(
            f"{name}: {r['variants']} variants, {r['model_bases'] / result['window'] / r['variants']:.2f} windows per "
            f"variant, {r['variants'] / r['cpu_s']:.2f} variants per CPU-second"
        )


if __name__ == "__main__":
    main()
