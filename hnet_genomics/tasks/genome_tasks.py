"""Labelled windows cut from genomes and their annotation, split by position so that train and test never
overlap or share a gene.

Two tasks come from the embedded demo data (``hnet-genomics data demo-task``):

- ``exon-starts``: 200 bp windows centred on annotated exon starts, read in transcript orientation (the strand
  of the CDS the exon overlaps; exons without one are skipped), against windows centred elsewhere in gene
  bodies at least 300 bp from every exon edge, matched one to one in GC content (within 2 %) and orientation.
  GC cannot tell the classes apart; what sits at the centre can (the splice acceptor's AG, its pyrimidine
  tract and branch point, the intron-to-exon change). The windows are stranded, so reverse-complement test-time
  averaging does not apply.
- ``species``: random 200 bp windows of two genomes (the human HLA region and E. coli K-12), in random
  orientation. Here k-mer composition carries most of the signal.

The split: test windows start at or after a cut and train windows end before it. The cut is a fraction of the
record (0.85: the part pretraining holds out as valid + test with the default fractions, so a pretrained
backbone never saw a test window), moved forward past any gene that spans it.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass

import numpy as np

from hnet_genomics.atomic import atomic_path
from hnet_genomics.data.bed import BedRecord
from hnet_genomics.data.encoding import reverse_complement
from hnet_genomics.data.genome import Genome
from hnet_genomics.errors import DataError

ACGT = frozenset(b"ACGT")


@dataclass(frozen=True)
class Window:
    chrom: str
    start: int
    end: int
    strand: str
    label: str
    sequence: bytes  # upper case, reverse-complemented for "-"
    note: str = ""

    @property
    def name(self) -> str:
        return f"{self.chrom}:{self.start}-{self.end}({self.strand})" + (f"|{self.note}" if self.note else "")


def gc_fraction(seq: bytes) -> float:
    return (seq.count(b"G") + seq.count(b"C")) / max(len(seq), 1)


def _window(genome: Genome, chrom: str, start: int, width: int, strand: str) -> bytes | None:
    """Upper-case ACGT-only bases of [start, start + width) on ``strand``, or None (edge, N, IUPAC)."""
    if start < 0 or start + width > genome.sizes[chrom]:
        return None
    seq = genome.fetch(chrom, start, start + width).upper()
    if not set(seq) <= ACGT:
        return None
    return reverse_complement(seq) if strand == "-" else seq


def split_cut(length: int, fraction: float, genes: list[tuple[int, int]]) -> int:
    """``fraction * length`` moved forward until no gene span contains it."""
    cut = int(fraction * length)
    moved = True
    while moved:
        moved = False
        for start, end in genes:
            if start < cut < end:
                cut, moved = end, True
    return cut


def exon_strands(exons: list[BedRecord], cds: list[BedRecord]) -> dict[tuple[str, int, int], str]:
    """Strand of each exon = the one strand of the CDS parts it overlaps; exons with none or both are left out."""
    by_chrom: dict[str, list[BedRecord]] = {}
    for c in cds:
        if c.strand in "+-":
            by_chrom.setdefault(c.chrom, []).append(c)
    out = {}
    for e in exons:
        strands = {c.strand for c in by_chrom.get(e.chrom, []) if c.start < e.end and e.start < c.end}
        if len(strands) == 1:
            out[(e.chrom, e.start, e.end)] = strands.pop()
    return out


def _segment(split: str, cut: int, length: int) -> tuple[int, int]:
    return (0, cut) if split == "train" else (cut, length)


def exon_start_task(
    genome: Genome,
    exons: list[BedRecord],
    cds: list[BedRecord],
    genes: list[BedRecord],
    width: int = 200,
    test_from: float = 0.85,
    min_distance: int = 300,
    gc_tolerance: float = 0.02,
    seed: int = 0,
) -> tuple[dict[str, list[Window]], dict]:
    """Exon-start windows and GC-matched background per split; also a summary of how they were chosen."""
    if width < 2 or width % 2:
        raise DataError(f"exon-start windows need an even width >= 2, got {width}")
    rng = np.random.default_rng(seed)
    strands = exon_strands(exons, cds)
    half = width // 2
    splits: dict[str, list[Window]] = {"train": [], "test": []}
    cuts: dict[str, int] = {}
    unmatched_positives = 0
    for chrom, length in genome.sizes.items():
        chrom_genes = [(g.start, g.end) for g in genes if g.chrom == chrom]
        cut = split_cut(length, test_from, chrom_genes)
        cuts[chrom] = cut
        edges = np.array(sorted({p for e in exons if e.chrom == chrom for p in (e.start, e.end)}), dtype=np.int64)
        oriented = [(e, strands.get((e.chrom, e.start, e.end))) for e in exons if e.chrom == chrom]
        starts = sorted({(e.start if s == "+" else e.end, s, e.name) for e, s in oriented if s is not None})
        seen = set()
        for split in ("train", "test"):
            lo, hi = _segment(split, cut, length)
            positives = []
            for pos, strand, name in starts:
                if (pos, strand) in seen or not (lo <= pos - half and pos + half <= hi):
                    continue
                seq = _window(genome, chrom, pos - half, width, strand)
                if seq is not None:
                    seen.add((pos, strand))
                    positives.append(Window(chrom, pos - half, pos + half, strand, "1", seq, name))
            bodies = [(max(a, lo + half), min(b, hi - half)) for a, b in chrom_genes]
            bodies = [(a, b) for a, b in bodies if b > a]
            used: set[int] = set()
            for w in positives:
                neg = _matched_background(
                    genome, chrom, w, bodies, (lo + half, hi - half), edges, min_distance, gc_tolerance, used, rng
                )
                if neg is None:
                    unmatched_positives += 1
                    continue
                splits[split] += [w, neg]
    summary = {
        "width": width,
        "test_from": test_from,
        "min_distance": min_distance,
        "gc_tolerance": gc_tolerance,
        "seed": seed,
        "exons": len(exons),
        "exons_with_strand": len(strands),
        "cuts": cuts,
        "unmatched_positives": unmatched_positives,
        "counts": {s: {lab: sum(w.label == lab for w in ws) for lab in ("1", "0")} for s, ws in splits.items()},
    }
    return splits, summary


def _matched_background(
    genome, chrom, positive: Window, bodies, segment, edges, min_distance, tolerance, used, rng, tries: int = 400
) -> Window | None:
    """A window centred in a gene body (else anywhere in the segment) far from exon edges, GC within tolerance."""
    width = positive.end - positive.start
    target = gc_fraction(positive.sequence)
    weights = np.array([b - a for a, b in bodies], dtype=float)
    for attempt in range(tries):
        if bodies and attempt < tries // 2:
            a, b = bodies[rng.choice(len(bodies), p=weights / weights.sum())]
        else:
            a, b = segment
        centre = int(rng.integers(a, b))
        if centre in used:
            continue
        k = np.searchsorted(edges, centre)
        near = [edges[i] for i in (k - 1, k) if 0 <= i < len(edges)]
        if any(abs(centre - e) < min_distance for e in near):
            continue
        seq = _window(genome, chrom, centre - width // 2, width, positive.strand)
        if seq is None or abs(gc_fraction(seq) - target) > tolerance:
            continue
        used.add(centre)
        return Window(chrom, centre - width // 2, centre + width // 2, positive.strand, "0", seq, "background")
    return None


def species_task(
    genomes: dict[str, Genome],
    train_per_class: int,
    test_per_class: int,
    width: int = 200,
    test_from: float = 0.85,
    seed: int = 0,
) -> tuple[dict[str, list[Window]], dict]:
    """Non-overlapping random windows of each genome (label = its key), random orientation, split by position."""
    rng = np.random.default_rng(seed)
    splits: dict[str, list[Window]] = {"train": [], "test": []}
    cuts: dict[str, int] = {}
    for label, genome in genomes.items():
        for split, n in (("train", train_per_class), ("test", test_per_class)):
            pool = []  # (chrom, lo, hi) segments of this split, sampled in proportion to their length
            for chrom, length in genome.sizes.items():
                cut = int(test_from * length)
                cuts[f"{label}:{chrom}"] = cut
                lo, hi = _segment(split, cut, length)
                if hi - lo >= width:
                    pool.append((chrom, lo, hi))
            if not pool:
                raise DataError(f"{genome.path}: no room for {width} bp {split} windows")
            sizes = np.array([hi - lo - width + 1 for _, lo, hi in pool], dtype=float)
            taken: dict[str, set[int]] = {}
            windows: list[Window] = []
            for _ in range(50 * n):
                if len(windows) == n:
                    break
                chrom, lo, hi = pool[rng.choice(len(pool), p=sizes / sizes.sum())]
                start = lo + width * int(rng.integers(0, (hi - lo) // width))  # a fixed grid: no overlaps
                strand = "-" if rng.random() < 0.5 else "+"
                if start in taken.setdefault(chrom, set()) or start + width > hi:
                    continue
                seq = _window(genome, chrom, start, width, strand)
                if seq is None:
                    continue
                taken[chrom].add(start)
                windows.append(Window(chrom, start, start + width, strand, label, seq, label))
            if len(windows) < n:
                raise DataError(f"{genome.path}: found only {len(windows)} of {n} clean {width} bp {split} windows")
            splits[split] += windows
    order = {s: rng.permutation(len(ws)) for s, ws in splits.items()}
    splits = {s: [ws[i] for i in order[s]] for s, ws in splits.items()}
    summary = {
        "width": width,
        "test_from": test_from,
        "seed": seed,
        "cuts": cuts,
        "counts": {s: {lab: sum(w.label == lab for w in ws) for lab in genomes} for s, ws in splits.items()},
    }
    return splits, summary


def check_on_genome(records: list[BedRecord], path, option: str, sizes: dict[str, int], fasta) -> None:
    """At least one record of an annotation BED lies on a record of the genome (else no window could be cut)."""
    if records and not any(r.chrom in sizes for r in records):
        known = ", ".join(list(sizes)[:3]) + (", ..." if len(sizes) > 3 else "")
        raise DataError(
            f"{option} {path}: none of its chromosomes ({', '.join(sorted({r.chrom for r in records})[:3])}"
            f"{', ...' if len({r.chrom for r in records}) > 3 else ''}) is a record of {fasta} ({known})"
        )


def check_stranded(cds: list[BedRecord], path) -> None:
    """Exon starts are oriented by the CDS they overlap: a CDS BED without strands orients none."""
    if not any(r.strand in ("+", "-") for r in cds):
        raise DataError(
            f"--cds {path}: no line has a strand (+ or -) in column 6; exon-starts orients each exon by the "
            f"strand of the CDS it overlaps"
        )


def require_windows(summary: dict, kind: str, width: int, test_from: float) -> None:
    """Every class has windows in both splits; a task without them would train or test on nothing."""
    for split, counts in summary["counts"].items():
        for label, n in counts.items():
            if n == 0:
                raise DataError(
                    f"make-task {kind}: no {split} window of class '{label}' (--width {width:,}, --test-from "
                    f"{test_from:g}); use narrower windows, or annotation and genome records that match"
                )


def write_windows_csv(windows: list[Window], path) -> None:
    """gzip CSV ``sequence,label,name`` (the layout ``read_labelled`` reads; names quoted where they hold
    commas or quotes), written atomically."""
    text = io.StringIO()
    out = csv.writer(text, lineterminator="\n")
    out.writerow(("sequence", "label", "name"))
    for w in windows:
        out.writerow((w.sequence.decode(), w.label, w.name))
    with atomic_path(path) as tmp:
        tmp.write_bytes(gzip.compress(text.getvalue().encode(), mtime=0))
