"""Simulated variants at real coordinates of the embedded HLA region, by annotation class, as a sorted VCF.

Classes (from the record's own GenBank features shipped in ``hnet_genomics/data/demo``):

- ``cds``: a base inside a CDS part;
- ``splice``: a base of a canonical splice-site dinucleotide, i.e. the two intron bases after an exon and
  the two before the next exon of the same gene when they read GT...AG (a + strand intron) or CT...AC (the
  same intron of a - strand gene, seen on the forward strand); the GenBank strand column is not trusted;
- ``intron``: inside a gene, outside every exon, at least 20 bp from any exon;
- ``intergenic``: at least 1 kb from every annotated gene.

SNVs take a uniformly chosen other base. ``--indels`` / ``--mnvs`` add deletions (1-10 bp), insertions
(1-10 random bases) and 2-3 base substitutions at uniform positions (class ``any``), and ``--extras`` adds
one multi-allelic record, one symbolic ``<DEL>`` and one ``*`` allele so every path of ``score-variants`` is
exercised. Nothing here is observed variation: the file is a test of what a model scores where. Run:

    python benchmarks/simulate_variants.py --per-class 50 --indels 20 --mnvs 5 --extras \
        --out pipelines/variants/hla_simulated.vcf
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from hnet_genomics.atomic import write_text_atomic
from hnet_genomics.data import demo
from hnet_genomics.data.genome import Genome

CLASSES = ("cds", "splice", "intron", "intergenic")


def read_bed(path: Path) -> list[tuple[str, int, int, str]]:
    rows = []
    for line in path.read_text().splitlines():
        f = line.split("\t")
        rows.append((f[0], int(f[1]), int(f[2]), f[3] if len(f) > 3 else ""))
    return rows


def coverage(rows, length: int, pad: int = 0) -> np.ndarray:
    mask = np.zeros(length, bool)
    for _, s, e, _ in rows:
        mask[max(0, s - pad) : min(length, e + pad)] = True
    return mask


def splice_sites(seq: bytes, exons) -> np.ndarray:
    """0-based positions of canonical splice-site dinucleotide bases (module docstring)."""
    by_gene: dict[str, list[tuple[int, int]]] = {}
    for _, s, e, name in exons:
        by_gene.setdefault(name, []).append((s, e))
    sites = set()
    for spans in by_gene.values():
        spans = sorted(set(spans))
        for (_, end), (start, _) in zip(spans, spans[1:]):
            if start - end < 20:
                continue
            donor, acceptor = seq[end : end + 2], seq[start - 2 : start]
            if (donor, acceptor) in ((b"GT", b"AG"), (b"CT", b"AC")):
                sites.update((end, end + 1, start - 2, start - 1))
    return np.array(sorted(sites), dtype=np.int64)


def class_positions(genome: Genome, chrom: str, lo: int = 0, hi: int | None = None) -> dict[str, np.ndarray]:
    """Candidate 0-based positions of each class inside [lo, hi) whose reference base is A, C, G or T."""
    length = genome.sizes[chrom]
    hi = length if hi is None else hi
    seq = genome.fetch(chrom, 0, length).upper()
    acgt = np.isin(np.frombuffer(seq, np.uint8), np.frombuffer(b"ACGT", np.uint8))
    genes, exons, cds = (read_bed(p) for p in (demo.HUMAN_GENES_BED, demo.HUMAN_EXONS_BED, demo.HUMAN_CDS_BED))
    in_gene, near_gene = coverage(genes, length), coverage(genes, length, 1000)
    in_exon_20 = coverage(exons, length, 20)
    masks = {"cds": coverage(cds, length), "intron": in_gene & ~in_exon_20, "intergenic": ~near_gene}
    splice = np.zeros(length, bool)
    splice[splice_sites(seq, exons)] = True
    masks["splice"] = splice
    window = np.zeros(length, bool)
    window[lo:hi] = True
    return {c: np.flatnonzero(masks[c] & acgt & window) for c in CLASSES}


def simulate(
    genome: Genome,
    chrom: str,
    per_class: int,
    indels: int,
    mnvs: int,
    extras: bool,
    seed: int,
    lo: int = 0,
    hi: int | None = None,
) -> list[tuple[int, str, str, str]]:
    """(0-based pos, REF, ALT, class) records, sorted; at most one record per position."""
    rng = np.random.default_rng(seed)
    length = genome.sizes[chrom]
    hi = length if hi is None else hi
    used: set[int] = set()
    records = []

    def base(p: int, n: int = 1) -> str:
        return genome.fetch(chrom, p, p + n).decode().upper()

    def free(p: int, n: int = 1) -> bool:
        return all(q not in used for q in range(p - 1, p + n + 1)) and set(base(p, n)) <= set("ACGT")

    for cls, candidates in class_positions(genome, chrom, lo, hi).items():
        picks = rng.permutation(candidates)
        n = 0
        for p in picks.tolist():
            if n == per_class:
                break
            if free(p):
                ref = base(p)
                records.append((p, ref, rng.choice([b for b in "ACGT" if b != ref]), cls))
                used.add(p)
                n += 1
    lo_any, hi_any = max(lo, 1), hi - 20
    for kind, count in (("indel", indels), ("mnv", mnvs)):
        made = 0
        while made < count:
            p = int(rng.integers(lo_any, hi_any))
            size = int(rng.integers(1, 11)) if kind == "indel" else int(rng.integers(2, 4))
            if not free(p, size + 1):
                continue
            if kind == "mnv":
                ref = base(p, size)
                alt = "".join(rng.choice([b for b in "ACGT" if b != r]) for r in ref)
            elif rng.random() < 0.5:  # deletion: anchor base + deleted bases
                ref, alt = base(p, size + 1), base(p)
            else:  # insertion after the anchor base
                ref = base(p)
                alt = ref + "".join(rng.choice(list("ACGT"), size))
            records.append((p, ref, alt, "any"))
            used.update(range(p, p + len(ref)))
            made += 1
    if extras:
        for alt_of in ("multi", "symbolic", "star"):
            while True:
                p = int(rng.integers(lo_any, hi_any))
                if free(p, 2):
                    break
            ref = base(p)
            others = [b for b in "ACGT" if b != ref]
            alt = {"multi": f"{others[0]},{others[1]},{ref}T", "symbolic": "<DEL>", "star": f"*,{others[2]}"}[alt_of]
            records.append((p, ref, alt, "any"))
            used.add(p)
    return sorted(records)


def to_vcf(records, chrom: str, length: int, command: str) -> str:
    lines = [
        "##fileformat=VCFv4.2",
        "##source=simulated by hnet-genomics benchmarks/simulate_variants.py (not observed variation)",
        f"##simulation_command={command}",
        f"##contig=<ID={chrom},length={length}>",
        '##INFO=<ID=CLASS,Number=1,Type=String,Description="Annotation class the position was drawn from: '
        "cds, splice (canonical splice-site dinucleotide), intron, intergenic, or any (indels, MNVs, "
        'special alleles)">',
        '##ALT=<ID=DEL,Description="Deletion">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
    ]
    for i, (p, ref, alt, cls) in enumerate(records):
        lines.append(f"{chrom}\t{p + 1}\tsim{i + 1}\t{ref}\t{alt}\t.\tPASS\tCLASS={cls}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fasta", type=Path, default=demo.HUMAN_FASTA)
    parser.add_argument("--per-class", type=int, default=50, help="SNVs per annotation class")
    parser.add_argument("--indels", type=int, default=0)
    parser.add_argument("--mnvs", type=int, default=0)
    parser.add_argument("--extras", action="store_true", help="one multi-allelic, one <DEL>, one '*' record")
    parser.add_argument("--start", type=int, default=0, help="only positions in [start, end) (0-based)")
    parser.add_argument("--end", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    genome = Genome(args.fasta)
    chrom = next(iter(genome.sizes))
    records = simulate(
        genome, chrom, args.per_class, args.indels, args.mnvs, args.extras, args.seed, args.start, args.end
    )
    command = "python benchmarks/simulate_variants.py " + " ".join(sys.argv[1:])
    write_text_atomic(args.out, to_vcf(records, chrom, genome.sizes[chrom], command))
    print(f"wrote {len(records)} records to {args.out}")


if __name__ == "__main__":
    main()
