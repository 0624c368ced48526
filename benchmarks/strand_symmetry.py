"""Strand symmetry of score-variants with a trained model: the same variants on a locus and, mirrored, on its
reverse complement should get the same both-strand score.

A held-out stretch of the embedded HLA region (the test tenth, which pretraining never saw) is written as a
contig ``fwd`` and its reverse complement ``rev``; SNVs at uniform positions and 1-10 bp insertions and
deletions (some in homopolymer runs) are scored on ``fwd``, and the same changes, written as VCF writes them
on ``rev`` (left anchor base), on ``rev``. Reported: the largest and median |HNET_LLR(fwd) - HNET_LLR(rev)| and
the largest relative to |HNET_LLR|, per kind. The script runs against whichever ``hnet_genomics`` it imports
(``--baseline DIR`` runs an earlier checkout's package on the same inputs in a subprocess). Run:

    python benchmarks/strand_symmetry.py --model results/demo/pretrain/hnet_1stage/model --threads 1 \\
        --baseline /tmp/before --out benchmarks/results/strand-symmetry-cpu.md
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

LOCUS = (2_006_835, 2_026_835)  # 20 kb at the start of the held-out test tenth (demo_test_region.bed)
COMPLEMENT = bytes.maketrans(b"ACGTN", b"TGCAN")


def rc(s: str) -> str:
    return s.encode().translate(COMPLEMENT)[::-1].decode()


def variants(seq: str, n_snv: int, n_indel: int, seed: int = 3) -> list[tuple[int, str, str, str]]:
    """(POS, REF, ALT, kind) on ``seq`` (1-based POS, left anchor for indels), sorted; kinds SNV, INS, DEL,
    and REPEAT for an indel inside a homopolymer run."""
    rng = np.random.default_rng(seed)
    n = len(seq)
    out = []
    for p in rng.choice(np.arange(2_000, n - 2_000), n_snv, replace=False):
        out.append((int(p) + 1, seq[p], rng.choice([b for b in "ACGT" if b != seq[p]]), "SNV"))
    for p in rng.choice(np.arange(2_000, n - 2_000), n_indel, replace=False):
        k = int(rng.integers(1, 11))
        if rng.random() < 0.5:
            out.append((int(p) + 1, seq[p], seq[p] + "".join(rng.choice(list("ACGT"), k)), "INS"))
        else:
            out.append((int(p) + 1, seq[p : p + k + 1], seq[p], "DEL"))
    for m in list(re.finditer(r"A{6,}|T{6,}", seq[2_000 : n - 2_000]))[:n_indel]:
        p = 2_000 + m.start() + 2  # inside the run: VCF would left-align it, we do not
        out.append((p, seq[p - 1 : p + 1], seq[p - 1], "REPEAT"))
    return sorted(out)


def mirrored(seq: str, row: tuple[int, str, str, str]) -> tuple[int, str, str, str]:
    """The same change on the reverse complement, as VCF writes it there (left anchor base)."""
    pos, ref, alt, kind = row
    i = 0
    while i < min(len(ref), len(alt)) and ref[i] == alt[i]:
        i += 1
    j = 0
    while j < min(len(ref), len(alt)) - i and ref[-1 - j] == alt[-1 - j]:
        j += 1
    r, a, start = ref[i : len(ref) - j], alt[i : len(alt) - j], pos - 1 + i
    m_start, m = len(seq) - (start + len(r)), rc(seq)
    if r and a:
        return m_start + 1, rc(r), rc(a), kind
    return m_start, m[m_start - 1] + rc(r), m[m_start - 1] + rc(a), kind


def measure(model_dir: Path, threads: int, n_snv: int, n_indel: int) -> dict:
    import torch

    from hnet_genomics import from_pretrained
    from hnet_genomics.data import demo
    from hnet_genomics.data.genome import Genome
    from hnet_genomics.export.variant_scores import score_vcf
    from hnet_genomics.inference.engine import InferenceEngine
    from hnet_genomics.inference.variants import VariantScoringConfig

    torch.set_num_threads(threads)
    model = from_pretrained(model_dir)
    window = model.trained_context or 1024
    hla = Genome(demo.HUMAN_FASTA)
    seq = hla.fetch(next(iter(hla.sizes)), *LOCUS).upper().decode()
    rows = variants(seq, n_snv, n_indel)
    mirror = sorted(mirrored(seq, r) for r in rows)
    scores: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        fasta = Path(tmp) / "locus.fa"
        fasta.write_text(f">fwd\n{seq}\n>rev\n{rc(seq)}\n")
        genome = Genome(fasta)
        for chrom, recs in (("fwd", rows), ("rev", mirror)):
            vcf = Path(tmp) / f"{chrom}.vcf"
            lines = [f"{chrom}\t{p}\t{k}{i}\t{r}\t{a}\t.\t.\t." for i, (p, r, a, k) in enumerate(recs)]
            head = f"##fileformat=VCFv4.2\n##contig=<ID={chrom},length={len(seq)}>\n"
            head += "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
            vcf.write_text(head + "\n".join(lines) + "\n")
            score_vcf(
                InferenceEngine(model, batch_size=32),
                genome,
                vcf,
                Path(tmp) / f"{chrom}.out.vcf.gz",
                VariantScoringConfig(window, "both"),
            )
            table = [ln.split("\t") for ln in (Path(tmp) / f"{chrom}.out.tsv").read_text().splitlines()[1:]]
            key = {f"{k}{i}": (p, r, a, k) for i, (p, r, a, k) in enumerate(recs)}
            for f in table:
                change = key[f[2]]
                ident = change if chrom == "fwd" else None
                if chrom == "rev":
                    ident = next(r for r in rows if mirrored(seq, r) == change)
                scores.setdefault(repr(ident), {"kind": change[3]})[chrom] = float(f[7]) if f[7] else None
    return {"window": window, "scores": list(scores.values())}


def summary(result: dict) -> dict[str, tuple[int, float, float, float]]:
    """Per kind (and all): (pairs, max |diff|, median |diff|, max |diff| / |mean score|)."""
    out = {}
    pairs = [s for s in result["scores"] if s.get("fwd") is not None and s.get("rev") is not None]
    for kind in ("SNV", "INS", "DEL", "REPEAT", "all"):
        sel = [s for s in pairs if kind in ("all", s["kind"])]
        if not sel:
            continue
        d = np.array([abs(s["fwd"] - s["rev"]) for s in sel])
        rel = d / np.maximum(np.array([abs(s["fwd"] + s["rev"]) / 2 for s in sel]), 1e-3)
        out[kind] = (len(sel), float(d.max()), float(np.median(d)), float(rel.max()))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--snvs", type=int, default=40)
    parser.add_argument("--indels", type=int, default=20)
    parser.add_argument("--baseline", type=Path, help="an earlier version's checkout, run in a subprocess")
    parser.add_argument("--baseline-name", default="")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    after = measure(args.model, args.threads, args.snvs, args.indels)
    if args.json:
        print(json.dumps(after))
        return
    before = None
    if args.baseline:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--json", "--model", str(args.model.resolve())]
        cmd += ["--threads", str(args.threads), "--snvs", str(args.snvs), "--indels", str(args.indels)]
        env = {**os.environ, "PYTHONPATH": str(args.baseline.resolve())}
        with tempfile.TemporaryDirectory() as cwd:
            text = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=True).stdout
        before = json.loads(text.strip().splitlines()[-1])
    from hardware import cpu_name

    lines = [
        "# Strand symmetry of score-variants on a held-out locus",
        "",
        f"Model: `{args.model}`, {after['window']}-base windows, `score-variants --strand both`. Locus: "
        f"BA000025.2:{LOCUS[0] + 1:,}-{LOCUS[1]:,} (held-out test tenth) as a contig and as its reverse complement; "
        f"{args.snvs} SNVs, {args.indels} insertions/deletions of 1-10 bp and up to {args.indels} one-base deletions "
        "inside A/T homopolymer runs (REPEAT, written un-left-aligned on the forward contig), each scored on the "
        "locus and, mirrored, on its reverse complement. |diff|: |HNET_LLR(locus) - HNET_LLR(mirror)| in nats; "
        "relative: |diff| / |mean HNET_LLR|. Hardware: "
        f"{cpu_name()}, shared with other work.",
        "",
    ]
    for name, result in (("before: " + (args.baseline_name or str(args.baseline)), before), ("this version", after)):
        if result is None:
            continue
        lines += [
            f"## {name}",
            "",
            "| kind | pairs | max abs diff | median abs diff | max relative diff |",
            "|---|---|---|---|---|",
        ]
        for kind, (n, mx, med, rel) in summary(result).items():
            lines.append(f"| {kind} | {n} | {mx:.2e} | {med:.2e} | {rel:.1%} |")
        lines.append("")
    lines += [f"Command: `python benchmarks/strand_symmetry.py {shlex.join(sys.argv[1:])}`", ""]
    report = "\n".join(lines)
    if args.out:
        from hnet_genomics.atomic import write_text_atomic

        write_text_atomic(args.out, report)
    print(report)


if __name__ == "__main__":
    main()
