"""Speed of score-variants, ism, likelihood and embed, and where their time goes (model vs input/output).

All three run on the one inference engine, which times what it spends preparing input (FASTA reads,
encoding, padding) apart from the model (forward pass and readout). The rest of each command's wall time is
its own input/output: VCF parsing, planning and writing VCF/TSV for variants, bedGraph and bigWig writing
for likelihood, reading the CSV and writing .npy for embed. Inputs are real: simulated variants at real
coordinates of the embedded HLA region (``simulate_variants.py``), a stretch of that region, and the
embedded Oct4/Mafk test sequences. A second table (``variant_cost.py``) gives the model windows each variant
costs and variants per CPU-second at three densities, for this version and, with ``--baseline DIR`` (a
checkout of an earlier version's package), for that one on the same inputs. Run:

    python benchmarks/inference_throughput.py --model results/demo/pretrain/hnet_1stage/model --threads 1 \
        --baseline /tmp/before --out benchmarks/results/inference-cpu.md
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from hardware import cpu_name
from simulate_variants import simulate, to_vcf
from variant_cost import measure

from hnet_genomics import build_model, from_pretrained, load_config
from hnet_genomics.atomic import write_text_atomic
from hnet_genomics.data import demo
from hnet_genomics.data.genome import Genome
from hnet_genomics.data.intervals import Interval  # noqa: E402
from hnet_genomics.export.embeddings import read_embedding_input, write_embeddings
from hnet_genomics.export.likelihood import export_likelihood
from hnet_genomics.export.regions import Region
from hnet_genomics.export.variant_scores import score_vcf
from hnet_genomics.inference.embeddings import EmbeddingConfig, embed_spans
from hnet_genomics.inference.engine import InferenceEngine
from hnet_genomics.inference.ism import saturation_mutagenesis
from hnet_genomics.inference.variants import VariantScoringConfig


class Clock:
    """Wall and process CPU time of a block (CPU time: what the run cost with the waiting for a shared core out)."""

    def __enter__(self) -> Clock:
        self.t0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall, self.cpu = time.perf_counter() - self.t0, time.process_time() - self.c0


def row(
    task: str, threads: int, setting: str, units: float, unit: str, bases: int, clock: Clock, engine: InferenceEngine
) -> str:
    t, seconds = engine.timing, clock.wall
    rest = max(seconds - t.model_s - t.prepare_s, 0.0)
    return (
        f"| {task} | {threads} | {setting} | {units / seconds:,.2f} {unit}/s | {units / clock.cpu:,.2f} | "
        f"{bases / seconds / 1e3:,.1f} | {t.bases / seconds / 1e3:,.1f} | {t.model_s / seconds:.0%} | "
        f"{t.prepare_s / seconds:.0%} | {rest / seconds:.0%} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="saved model (default: tiny 1-stage config at init, seed 0)")
    parser.add_argument("--config", default="dna/hnet_1stage_tiny")
    parser.add_argument("--variants-per-class", type=int, default=20, help="SNVs per annotation class")
    parser.add_argument("--indels", type=int, default=20)
    parser.add_argument("--region-length", type=int, default=50_000)
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    parser.add_argument("--ism-bp", type=int, default=64, help="bases of the ism region")
    parser.add_argument("--baseline", type=Path, help="an earlier version's checkout, measured by variant_cost.py")
    parser.add_argument("--baseline-name", default="", help="how the table names the baseline (e.g. a commit)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    if args.model:
        model, name = from_pretrained(args.model), f"`{args.model}`"
    else:
        torch.manual_seed(0)
        model, name = build_model(load_config(args.config)), f"`{args.config}` at initialisation (seed 0)"
    window = model.trained_context or 1024
    genome = Genome(demo.HUMAN_FASTA)
    chrom = next(iter(genome.sizes))
    records = simulate(genome, chrom, args.variants_per_class, args.indels, 0, False, seed=1)
    region = Region(chrom, 1_000_000, 1_000_000 + args.region_length)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        vcf = tmp / "sim.vcf"
        vcf.write_text(to_vcf(records, chrom, genome.sizes[chrom], "benchmark"))
        pd_in = tmp / "tfbs.csv"
        import pandas as pd

        pd.read_csv(demo.TFBS_TEST).to_csv(pd_in, index=False)
        # warm-up: first calls pay for lazy initialisation
        list(embed_spans(InferenceEngine(model), genome, [Region(chrom, 0, 2048)], EmbeddingConfig(), window, 256))
        for threads in args.threads:
            torch.set_num_threads(threads)
            for strand in ("both", "fwd"):
                engine = InferenceEngine(model, batch_size=32)
                with Clock() as clock:
                    s = score_vcf(engine, genome, vcf, tmp / "o.vcf.gz", VariantScoringConfig(window, strand))
                rows.append(
                    row(
                        "score-variants",
                        threads,
                        f"--strand {strand}",
                        s.scored,
                        "variants",
                        s.scored * window,
                        clock,
                        engine,
                    )
                )
                print(rows[-1], flush=True)
            for strand in ("fwd", "both"):
                engine = InferenceEngine(model, batch_size=16)
                with Clock() as clock:
                    res = export_likelihood(
                        engine, genome, [region], tmp / "lk", ("bedgraph", "bigwig"), window, window // 4, strand
                    )
                rows.append(
                    row("likelihood", threads, f"--strand {strand}", res.bases, "bases", res.bases, clock, engine)
                )
                print(rows[-1], flush=True)
            engine = InferenceEngine(model, batch_size=32)
            ism_region = Interval(chrom, 1_000_000, 1_000_000 + args.ism_bp)
            with Clock() as clock:
                ism = saturation_mutagenesis(engine, genome, ism_region, VariantScoringConfig(window))
            changes = int((~np.isnan(ism.llr)).sum())
            setting = f"{args.ism_bp} bp, both strands"
            rows.append(row("ism", threads, setting, changes, "changes", changes * window, clock, engine))
            print(rows[-1], flush=True)
            engine = InferenceEngine(model, batch_size=32)
            with Clock() as clock:
                inp = read_embedding_input(pd_in)
                items = list(
                    embed_spans(
                        engine, inp.source, inp.spans, EmbeddingConfig("mean", per_chunk=True), window, window // 4
                    )
                )
                write_embeddings(items, inp, tmp / "e.npy")
            bases = sum(len(s) for s in inp.spans)
            rows.append(row("embed", threads, "mean + --per-chunk", len(items), "sequences", bases, clock, engine))
            print(rows[-1], flush=True)
    cost_threads = args.threads[-1]
    torch.set_num_threads(cost_threads)
    after = measure(args.model, cost_threads, 3_000, args.ism_bp, args.variants_per_class) if args.model else None
    before = baseline_cost(args, cost_threads) if args.model and args.baseline else None
    report = "\n".join(
        [
            "# Inference throughput: score-variants, likelihood, embed",
            "",
            f"Model: {name}, {model.num_parameters():,} parameters, {window}-base windows, fp32. "
            f"Hardware: {cpu_name()}, shared with other work (1-minute load average {os.getloadavg()[0]:.1f} at the "
            "end of the run).",
            "",
            f"Inputs: {len(records)} simulated variants at real coordinates of the HLA region "
            f"({args.variants_per_class} SNVs in each of CDS, splice-site, intron and intergenic positions, "
            f"{args.indels} indels of 1-10 bp; "
            "`simulate_variants.py`, seed 1), scored in windows centred on REF; "
            f"{len(region):,} bp of the region ({region}) for likelihood (windows overlap by a quarter); "
            f"{args.ism_bp} bp from {chrom}:1,000,001 for ism (3 changes per base); the 200 Oct4/Mafk test sequences "
            "(200 bp each) for embed.",
            "",
            "*per CPU-second*: the same units divided by the CPU time the process used (all threads), the rate "
            "with the waiting for a shared core taken out; on a machine busy with other work (as here, see the load "
            "average) compare this column, not the wall rates, which depend on what else ran at the time. "
            "*genome kb/s*: bases of the input per second (for variants: window bases per variant, i.e. the sequence "
            "each variant is judged on); *model kb/s*: bases the model actually ran (both alleles, both strands, "
            "overlaps). Shares of wall time: *model* = forward pass and readout; *input prep* = FASTA reads, "
            "encoding, padding; *command I/O and the rest* = VCF parsing and writing, LLR sums, bedGraph/bigWig or "
            ".npy writing, planning.",
            "",
            "| command | torch threads | setting | rate (wall) | per CPU-second | genome kb/s | model kb/s | model | "
            "input prep | command I/O and the rest |",
            "|---|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            *cost_table(after, before, args.baseline_name or str(args.baseline), cost_threads),
            f"Command: `python benchmarks/inference_throughput.py {shlex.join(sys.argv[1:])}`",
            "",
        ]
    )
    if args.out:
        write_text_atomic(args.out, report)
    print(report)


def baseline_cost(args, threads: int) -> dict:
    """``variant_cost.measure`` run by an earlier version's package (a subprocess importing it first)."""
    cmd = [
        sys.executable,
        str(Path(__file__).with_name("variant_cost.py")),
        "--json",
        "--model",
        str(args.model.resolve()),
    ]
    cmd += ["--threads", str(threads), "--saturation-bp", str(args.ism_bp), "--sparse", str(args.variants_per_class)]
    env = {**os.environ, "PYTHONPATH": str(args.baseline.resolve())}
    with tempfile.TemporaryDirectory() as cwd:  # not the checkout, whose package would be imported first
        out = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def cost_table(after: dict | None, before: dict | None, baseline: str, threads: int) -> list[str]:
    if after is None:
        return []
    lines = [
        f"## Cost per variant, score-variants --strand both ({threads} torch thread)",
        "",
        "*windows per variant*: bases the model ran divided by the window length and by the variants scored "
        "(`variant_cost.py`). *sparse*: the simulated set above, no two variants in one window; *every10*: one "
        "SNV every 10 bp over 3 kb; *saturation*: all three SNVs at every base of a stretch, as `ism` scores them.",
        "",
    ]
    head = "| set | variants | windows per variant | variants per CPU-second |"
    rule = "|---|---|---|---|"
    if before is not None:
        lines.append(f"Before: {baseline}, same inputs and model.")
        lines.append("")
        head = (
            "| set | variants | windows per variant, before | after | variants per CPU-second, before | after | "
            "speed-up |"
        )
        rule = "|---|---|---|---|---|---|---|"
    lines += [head, rule]
    for name, a in after["sets"].items():
        cost_a = a["model_bases"] / after["window"] / a["variants"]
        rate_a = a["variants"] / a["cpu_s"]
        if before is None:
            lines.append(f"| {name} | {a['variants']} | {cost_a:.2f} | {rate_a:.2f} |")
            continue
        b = before["sets"][name]
        cost_b, rate_b = b["model_bases"] / before["window"] / b["variants"], b["variants"] / b["cpu_s"]
        lines.append(
            f"| {name} | {a['variants']} | {cost_b:.2f} | {cost_a:.2f} | {rate_b:.2f} | {rate_a:.2f} | "
            f"{rate_a / rate_b:.1f}x |"
        )
    return [*lines, ""]


if __name__ == "__main__":
    main()
