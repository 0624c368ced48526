"""``score-variants`` end to end: VCF in, every record scored where it can be, annotated VCF + TSV out.

Records are read in groups; each group's allele windows (``inference/variants.py``) go through the
inference engine together, and windows that are identical are run once: the REF window of a record serves
all its ALT alleles, and split multi-allelic records at one position share it too. Output keeps every
input header line and record, in input order, adding only the INFO fields (Number=A: one value per ALT,
``.`` where an allele was not scored), the REF_MISMATCH filter and a header line with the settings. The
bgzipped VCF, its tabix index and the TSV appear under their final names only once complete.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from hnet_genomics.atomic import atomic_path
from hnet_genomics.config import DataConfig
from hnet_genomics.data.vcf import classify_allele, open_vcf, records, survey_vcf
from hnet_genomics.errors import ConfigError, DataError
from hnet_genomics.inference import readouts
from hnet_genomics.inference.engine import InferenceEngine, encode_region
from hnet_genomics.inference.variants import (
    AlleleScore,
    AlleleWindow,
    VariantScoringConfig,
    boundary_shift,
    first_difference,
    flank_lengths,
    llr_from_log_probs,
)
from hnet_genomics.options import check_output_file

if TYPE_CHECKING:
    from pysam import VariantRecord

RECORDS_PER_GROUP = 256
TSV_COLUMNS = ("chrom", "pos", "id", "ref", "alt", "kind", "status", "llr", "llr_fwd", "llr_rev", "bshift")


@dataclass
class AllelePlan:
    alt: str
    kind: str
    status: str  # "scored" or the reason it is not
    score: AlleleScore | None = None


@dataclass
class RecordPlan:
    rec: VariantRecord
    ref: bytes
    window: AlleleWindow | None
    alleles: list[AllelePlan]
    ref_mismatch: bool = False


@dataclass
class VariantSummary:
    records: int = 0
    alleles: int = 0
    scored: int = 0
    kinds: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    ref_mismatch_records: int = 0
    windows_run: int = 0
    seconds: float = 0.0
    files: list[Path] = field(default_factory=list)


def output_paths(out: str | Path) -> tuple[Path, Path, Path]:
    """(VCF.gz, its .tbi, the TSV beside it) for ``--out OUT.vcf.gz``."""
    out = Path(out)
    if not out.name.endswith(".vcf.gz"):
        raise ConfigError(f"--out {out}: the output is a bgzipped VCF and must end in .vcf.gz")
    check_output_file(out)
    return out, Path(f"{out}.tbi"), out.with_name(out.name[: -len(".vcf.gz")] + ".tsv")


def add_header_lines(header, cfg: VariantScoringConfig, hierarchical: bool, model_name: str) -> list[str]:
    """Declare our INFO fields and filter (replacing earlier declarations of the same IDs); returns the keys."""
    strand = "mean of both strands" if cfg.strand == "both" else "forward strand"
    info = [
        (
            "HNET_LLR",
            "Float",
            f"Model log-likelihood ratio ln P(ALT window) - ln P(REF window), {strand}; "
            f"{cfg.window}-base window centred on REF, same flanks for both alleles",
        )
    ]
    if cfg.strand == "both":
        info += [
            ("HNET_LLR_FWD", "Float", "HNET_LLR on the forward strand"),
            ("HNET_LLR_REV", "Float", "HNET_LLR on the reverse strand (both windows reverse-complemented)"),
        ]
    if hierarchical:
        info.append(
            (
                "HNET_BSHIFT",
                "Integer",
                f"Stage-1 H-Net chunk boundaries the ALT allele moves within {cfg.bshift_flank} bp (forward strand)",
            )
        )
    for key, kind, text in info:
        if key in header.info:
            header.info.remove_header(key)
        header.info.add(key, "A", kind, text)
    if "REF_MISMATCH" not in header.filters:
        header.filters.add("REF_MISMATCH", None, None, "REF does not match the reference FASTA; not scored")
    header.add_line(
        f'##hnet_genomics_score_variants=<Model="{model_name}",Window={cfg.window},'
        f"Strand={cfg.strand},MaxLen={cfg.max_len},BShiftFlank={cfg.bshift_flank}>"
    )
    return [k for k, _, _ in info]


def plan_record(rec, genome, cfg: VariantScoringConfig, data_cfg: DataConfig, vcf_path, index: int) -> RecordPlan:
    """Check REF against the FASTA, classify each ALT, and cut the flanks shared by all of them."""
    chrom, pos0, ref = rec.chrom, rec.pos - 1, rec.ref.upper()
    size = genome.sizes[chrom]
    fasta_ref = genome.fetch(chrom, pos0, min(pos0 + len(ref), size)).upper().decode() if pos0 < size else ""
    alts = rec.alts or (None,)
    if fasta_ref != ref:
        if cfg.strict:
            raise DataError(
                f"{vcf_path}: record {index} ({chrom}:{rec.pos}): REF '{rec.ref}' does not match "
                f"{genome.path} ('{fasta_ref or 'past the contig end'}'); check the reference, or drop "
                f"--strict to flag such records REF_MISMATCH"
            )
        return RecordPlan(rec, ref.encode(), None, [AllelePlan(a or ".", "", "ref_mismatch") for a in alts], True)
    left, right = flank_lengths(pos0, len(ref), cfg.window, size)
    window = AlleleWindow(
        chrom,
        pos0 - left,
        encode_region(genome, chrom, pos0 - left, pos0, data_cfg).tobytes(),
        encode_region(genome, chrom, pos0 + len(ref), pos0 + len(ref) + right, data_cfg).tobytes(),
    )
    alleles = []
    for alt in alts:
        kind, skip = classify_allele(ref, alt, cfg.max_len)
        if skip is None:
            assert alt is not None  # classify_allele skips a missing ALT (no_alt)
            if _edge(window, ref.encode(), alt.upper().encode(), cfg.strand):
                skip = "contig_edge"
        alleles.append(AllelePlan(alt or ".", kind, skip or "scored"))
    return RecordPlan(rec, ref.encode(), window, alleles)


def _edge(w: AlleleWindow, ref: bytes, alt: bytes, strand: str) -> bool:
    strands = ("+", "-") if strand == "both" else ("+",)
    return any(first_difference(w.sequence(ref, s), w.sequence(alt, s)) == 0 for s in strands)


def _jobs(plans: list[RecordPlan], strands: tuple[str, ...]) -> list[bytes]:
    """The distinct window sequences to run (a window is identified by its bases, strand included)."""
    jobs: dict[bytes, None] = {}
    for p in plans:
        for a in p.alleles:
            if a.status == "scored":
                assert p.window is not None  # only a REF mismatch has no window, and it scores nothing
                for allele in (p.ref, a.alt.upper().encode()):
                    for s in strands:
                        jobs.setdefault(p.window.sequence(allele, s))
    return list(jobs)


def score_plans(engine: InferenceEngine, plans: list[RecordPlan], cfg: VariantScoringConfig) -> int:
    """Fill in ``AllelePlan.score`` for every scorable allele; returns the number of windows run."""
    strands = ("+", "-") if cfg.strand == "both" else ("+",)
    jobs = _jobs(plans, strands)
    results = dict(engine.run(jobs, lambda seq: np.frombuffer(seq, np.uint8), readouts.log_probs))
    hierarchical = engine.model.config.num_stages > 0
    for p in plans:
        w = p.window
        for a in p.alleles:
            if a.status != "scored":
                continue
            assert w is not None  # only a REF mismatch has no window, and it scores nothing
            alt = a.alt.upper().encode()
            llr = {}
            for s in strands:
                ref_seq, alt_seq = w.sequence(p.ref, s), w.sequence(alt, s)
                (lp_ref, b_ref), (lp_alt, b_alt) = results[ref_seq], results[alt_seq]
                llr[s] = llr_from_log_probs(lp_ref, lp_alt, first_difference(ref_seq, alt_seq))
                if s == "+" and hierarchical:
                    bshift = boundary_shift(b_ref, b_alt, len(w.left), len(p.ref), len(alt), cfg.bshift_flank)
            a.score = AlleleScore(llr["+"], llr.get("-"), bshift if hierarchical else None)
    return len(jobs)


def _annotate(p: RecordPlan, keys: list[str]) -> None:
    rec = p.rec
    if p.ref_mismatch:
        rec.filter.add("REF_MISMATCH")
    values = {
        "HNET_LLR": lambda s: s.llr,
        "HNET_LLR_FWD": lambda s: s.llr_fwd,
        "HNET_LLR_REV": lambda s: s.llr_rev,
        "HNET_BSHIFT": lambda s: s.bshift,
    }
    for key in keys:
        if key in rec.info:
            del rec.info[key]
        if rec.alts and any(a.score is not None for a in p.alleles):
            rec.info[key] = tuple(None if a.score is None else values[key](a.score) for a in p.alleles)


def _tsv_rows(p: RecordPlan) -> str:
    rec, lines = p.rec, []
    assert rec.ref is not None  # plan_record read it
    for a in p.alleles:
        s = a.score
        fields = [
            rec.chrom,
            str(rec.pos),
            rec.id or ".",
            rec.ref,
            a.alt,
            a.kind or ".",
            a.status,
            _num(s and s.llr),
            _num(s and s.llr_fwd),
            _num(s and s.llr_rev),
            _num(s and s.bshift),
        ]
        lines.append("\t".join(fields) + "\n")
    return "".join(lines)


def _num(x) -> str:
    return "" if x is None else str(x) if isinstance(x, int) else f"{x:.6g}"


def _groups(it: Iterator, n: int) -> Iterator[list]:
    while group := list(islice(it, n)):
        yield group


def score_vcf(
    engine: InferenceEngine,
    genome,
    vcf_path: str | Path,
    out: str | Path,
    cfg: VariantScoringConfig,
    model_name: str = "",
    data_cfg: DataConfig | None = None,
    progress: bool = False,
) -> VariantSummary:
    """Score every ALT allele of ``vcf_path`` and write ``out`` (.vcf.gz + .tbi) and the TSV beside it."""
    import pysam
    from pysam.libcbgzf import BGZFile
    from tqdm import tqdm

    cfg.validate()
    data_cfg = data_cfg or DataConfig()
    out_vcf, out_tbi, out_tsv = output_paths(out)
    t0 = time.perf_counter()
    survey = survey_vcf(vcf_path, genome.sizes, genome.path)
    summary = VariantSummary()
    hierarchical = engine.model.config.num_stages > 0
    with open_vcf(vcf_path) as vcf, ExitStack() as stack:
        header = vcf.header
        for chrom in survey.contigs:
            if chrom not in header.contigs:
                header.contigs.add(chrom, length=genome.sizes[chrom])
        keys = add_header_lines(header, cfg, hierarchical, model_name)
        tmp_tbi = stack.enter_context(atomic_path(out_tbi))  # entered first, so renamed after the data
        tmp_vcf = stack.enter_context(atomic_path(out_vcf))
        tmp_tsv = stack.enter_context(atomic_path(out_tsv))
        bar = stack.enter_context(
            tqdm(total=survey.records, unit="rec", disable=not progress, desc="variants", dynamic_ncols=True)
        )
        # index=None is pysam's own default, spelled out because its type stub omits that default
        with BGZFile(str(tmp_vcf), "wb", index=None) as vcf_out, tmp_tsv.open("w") as tsv:
            vcf_out.write(str(header).encode())
            tsv.write("\t".join(TSV_COLUMNS) + "\n")
            for group in _groups(records(vcf, vcf_path), RECORDS_PER_GROUP):
                first = summary.records + 1
                plans = [plan_record(rec, genome, cfg, data_cfg, vcf_path, first + i) for i, rec in enumerate(group)]
                summary.windows_run += score_plans(engine, plans, cfg)
                for p in plans:
                    _annotate(p, keys)
                    _count(summary, p)
                    vcf_out.write(str(p.rec).encode())
                    tsv.write(_tsv_rows(p))
                bar.update(len(group))
        pysam.tabix_index(str(tmp_vcf), preset="vcf", force=True, index=str(tmp_tbi))
    summary.seconds = time.perf_counter() - t0
    summary.files = [out_vcf, out_tbi, out_tsv]
    return summary


def _count(summary: VariantSummary, p: RecordPlan) -> None:
    summary.records += 1
    summary.ref_mismatch_records += p.ref_mismatch
    for a in p.alleles:
        summary.alleles += 1
        if a.score is not None:
            summary.scored += 1
            summary.kinds[a.kind] += 1
        else:
            summary.skipped[a.status] += 1
