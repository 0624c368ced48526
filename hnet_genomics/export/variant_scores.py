"""``score-variants`` end to end: VCF in, every ALT allele scored where it can be, annotated VCF + TSV out.

Records are read in groups; each group's alleles are scored together (``inference/variants.py``), so alleles
that share a window share its computation. The output keeps every input record, in input order, and every
header line except earlier declarations of our own fields (re-scoring a scored VCF replaces them and says
so). It adds per ALT allele (INFO, Number=A, ``.`` where not scored): HNET_LLR (mean of the strands that
scored it), HNET_LLR_FWD / HNET_LLR_REV, HNET_LLR_FLANK (the length-neutral part), HNET_BSHIFT (H-Nets),
HNET_STATUS (``scored``, ``scored_fwd`` / ``scored_rev`` when one strand could not, or why it was not scored)
and HNET_CLIPPED; the REF_MISMATCH filter; and one header line naming the model (path, architecture, weights
SHA-256), the package version, the settings and the sign convention. The bgzipped VCF, its tabix index and
the TSV appear under their final names only once complete.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from importlib import metadata
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

from hnet_genomics.atomic import atomic_path
from hnet_genomics.data.vcf import classify_allele, open_vcf, quiet_htslib, records, survey_vcf
from hnet_genomics.errors import ConfigError, DataError
from hnet_genomics.inference.engine import InferenceEngine, encode_region
from hnet_genomics.inference.variants import (
    AlleleScore,
    AlleleTask,
    VariantScoringConfig,
    WindowLayout,
    allele_window,
    footprint,
    score_tasks,
)
from hnet_genomics.options import check_output_file

if TYPE_CHECKING:
    from pysam import VariantHeader, VariantRecord

    from hnet_genomics.model.lm import HNetLM

log = logging.getLogger(__name__)

RECORDS_PER_GROUP = 256
TSV_COLUMNS = (
    "chrom",
    "pos",
    "id",
    "ref",
    "alt",
    "kind",
    "status",
    "llr",
    "llr_fwd",
    "llr_rev",
    "llr_flank",
    "bshift",
    "clipped",
    "footprint_start",
    "footprint_end",
    "window_start",
    "window_end",
)
HEADER_KEY = "hnet_genomics_score_variants"
OUR_INFO = ("HNET_LLR", "HNET_LLR_FWD", "HNET_LLR_REV", "HNET_LLR_FLANK", "HNET_BSHIFT", "HNET_STATUS", "HNET_CLIPPED")
SIGN = "HNET_LLR < 0: ALT less likely than REF under the model (nats; not calibrated)"


@dataclass
class AllelePlan:
    alt: str
    kind: str
    status: str  # "scored", "scored_fwd", "scored_rev" or the reason it is not
    task: AlleleTask | None = None

    @property
    def score(self) -> AlleleScore | None:
        return None if self.task is None else self.task.score


@dataclass
class RecordPlan:
    rec: VariantRecord
    alleles: list[AllelePlan]
    ref_mismatch: bool = False


@dataclass
class VariantSummary:
    records: int = 0
    alleles: int = 0
    scored: int = 0
    one_strand: int = 0  # scored on one strand only (the other could not: contig ends)
    clipped: int = 0
    kinds: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    ref_mismatch_records: int = 0
    jobs: int = 0  # windows x strands run (a shared prefix and its continuations each)
    replaced_fields: list[str] = field(default_factory=list)
    seconds: float = 0.0
    files: list[Path] = field(default_factory=list)


def output_paths(out: str | Path) -> tuple[Path, Path, Path]:
    """(VCF.gz, its .tbi, the TSV beside it) for ``--out OUT.vcf.gz``."""
    out = Path(out)
    if not out.name.endswith(".vcf.gz"):
        raise ConfigError(f"--out {out}: the output is a bgzipped VCF and must end in .vcf.gz")
    check_output_file(out)
    return out, Path(f"{out}.tbi"), out.with_name(out.name[: -len(".vcf.gz")] + ".tsv")


def model_identity(model_dir: str | Path, model: HNetLM) -> dict[str, str]:
    """What the output header says about the model: its folder, architecture, weights SHA-256, our version."""
    from hnet_genomics.model.lm import WEIGHTS_FILE

    digest = hashlib.sha256()
    with open(Path(model_dir) / WEIGHTS_FILE, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    cfg = model.config
    return {
        "Model": str(model_dir),
        "Architecture": f"{cfg.arch_layout} d_model={cfg.d_model} ({model.num_parameters():,} parameters)".replace(
            '"', "'"
        ),
        "WeightsSHA256": digest.hexdigest(),
    }


def _version() -> str:
    try:
        return metadata.version("hnet-genomics")
    except metadata.PackageNotFoundError:
        return "unknown"


def info_fields(cfg: VariantScoringConfig, hierarchical: bool) -> list[tuple[str, str, str]]:
    """(ID, Type, Description) of the INFO fields we write, all Number=A."""
    layout = cfg.layout()
    strand = "mean of the strands that scored it" if cfg.strand == "both" else "forward strand"
    window = (
        f"window of at least {layout.flank} reference bases on each side of the allele's footprint, ends on a "
        f"{layout.grid}-base grid ({layout.snv_window} bases for an SNV)"
    )
    info = [
        ("HNET_LLR", "Float", f"ln P(ALT window) - ln P(REF window) in nats, {strand}; {window}; {SIGN}"),
    ]
    if cfg.strand == "both":
        info += [
            ("HNET_LLR_FWD", "Float", "HNET_LLR on the forward strand"),
            ("HNET_LLR_REV", "Float", "HNET_LLR on the reverse strand (both windows reverse-complemented)"),
        ]
    info.append(
        (
            "HNET_LLR_FLANK",
            "Float",
            "Length-neutral part of HNET_LLR: only the terms of the bases after the footprint, which REF and ALT "
            "share (compare indels of any length with this)",
        )
    )
    if hierarchical:
        info.append(
            (
                "HNET_BSHIFT",
                "Integer",
                f"Stage-1 H-Net chunk boundaries the ALT allele moves within {cfg.bshift_flank} bp of its footprint, "
                "summed over the strands that scored it",
            )
        )
    info += [
        (
            "HNET_STATUS",
            "String",
            "scored; scored_fwd or scored_rev (only that strand could score it: contig end); or why not scored",
        ),
        ("HNET_CLIPPED", "Integer", "1 if the allele's window was cut short by a contig end, else 0"),
    ]
    return info


def output_header(
    header: VariantHeader, cfg: VariantScoringConfig, hierarchical: bool, identity: dict[str, str]
) -> tuple[str, list[str], list[str]]:
    """The input header's text without earlier declarations of our fields, with ours added before ``#CHROM``;
    returns it, our INFO keys and the keys it replaced. Edited as text: htslib cannot re-declare a field."""
    fields = info_fields(cfg, hierarchical)
    lines, replaced = [], []
    for line in str(header).splitlines():
        key = _declared_info(line)
        if key in OUR_INFO:
            replaced.append(key)
        elif not line.startswith(f"##{HEADER_KEY}="):
            lines.append(line)
    ours = [f'##INFO=<ID={key},Number=A,Type={kind},Description="{text}">' for key, kind, text in fields]
    if "REF_MISMATCH" not in header.filters:
        ours.append('##FILTER=<ID=REF_MISMATCH,Description="REF does not match the reference FASTA; not scored">')
    layout = cfg.layout()
    about = {
        **identity,
        "Version": _version(),
        "Window": str(cfg.window),
        "Flank": str(layout.flank),
        "Grid": str(layout.grid),
        "Strand": cfg.strand,
        "MaxLen": str(cfg.max_len),
        "BShiftFlank": str(cfg.bshift_flank),
        "Sign": SIGN,
    }
    ours.append(f"##{HEADER_KEY}=<" + ",".join(f'{k}="{v}"' for k, v in about.items()) + ">")
    text = "\n".join(lines[:-1] + ours + lines[-1:]) + "\n"  # the last line is #CHROM
    return text, [k for k, _, _ in fields], replaced


def _declared_info(line: str) -> str | None:
    if not line.startswith("##INFO=<ID="):
        return None
    return line[len("##INFO=<ID=") :].split(",", 1)[0]


def plan_record(
    rec, genome, cfg: VariantScoringConfig, layout: WindowLayout, vcf_path, index: int, warn: Callable[[str], None]
) -> RecordPlan:
    """Check the record (POS, REF against the FASTA), classify each ALT, and find each scorable one's footprint
    and window."""
    chrom, pos, ref = rec.chrom, rec.pos, (rec.ref or "").upper()
    alts = rec.alts or (None,)
    if pos < 1:
        warn(f"{vcf_path}: record {index} ({chrom}:{pos}): POS {pos} is not a position (VCF counts from 1); skipped")
        return RecordPlan(rec, [AllelePlan(a or ".", "", "bad_pos") for a in alts])
    pos0, size = pos - 1, genome.sizes[chrom]
    fasta_ref = genome.fetch(chrom, pos0, min(pos0 + len(ref), size)).upper().decode() if pos0 < size else ""
    if fasta_ref != ref:
        if cfg.strict:
            raise DataError(
                f"{vcf_path}: record {index} ({chrom}:{pos}): REF '{rec.ref}' does not match "
                f"{genome.path} ('{fasta_ref or 'past the contig end'}'); check the reference, or drop "
                f"--strict to flag such records REF_MISMATCH"
            )
        return RecordPlan(rec, [AllelePlan(a or ".", "", "ref_mismatch") for a in alts], True)
    alleles = []
    for alt in alts:
        kind, skip = classify_allele(ref, alt, cfg.max_len)
        plan = AllelePlan(alt or ".", kind, skip or "scored")
        if skip is None:
            assert alt is not None  # classify_allele skips a missing ALT (no_alt)
            fp = footprint(lambda s, e: genome.fetch(chrom, s, e), size, pos0, ref.encode(), alt.encode(), cfg.max_len)
            if fp is None:
                plan.status = "repeat_too_long"
            else:
                plan.task = AlleleTask(allele_window(chrom, size, fp, layout), fp)
        alleles.append(plan)
    return RecordPlan(rec, alleles)


def score_plans(engine: InferenceEngine, genome, plans: list[RecordPlan], cfg: VariantScoringConfig) -> int:
    """Score every planned allele and set its status; returns the jobs run."""
    assert engine.data_cfg is not None  # set from the model when the engine is made
    data_cfg = engine.data_cfg
    tasks = [a.task for p in plans for a in p.alleles if a.task is not None]
    jobs = score_tasks(engine, tasks, cfg, lambda w: encode_region(genome, w.chrom, w.lo, w.hi, data_cfg).tobytes())
    for p in plans:
        for a in p.alleles:
            if a.task is None:
                continue
            strands = a.task.score.strands if a.task.score is not None else {}
            if not strands:
                a.status = "contig_edge"
            elif len(strands) < len(cfg.strands):
                a.status = "scored_fwd" if "+" in strands else "scored_rev"
    return jobs


def _annotate(p: RecordPlan, keys: list[str]) -> str:
    """The record's VCF line with our INFO values (replacing earlier ones) and the REF_MISMATCH filter."""
    f = str(p.rec).rstrip("\n").split("\t")
    if p.ref_mismatch:
        f[6] = "REF_MISMATCH" if f[6] in (".", "PASS") else f"{f[6]};REF_MISMATCH"
    info = [kv for kv in f[7].split(";") if kv != "." and kv.split("=", 1)[0] not in OUR_INFO]
    if p.rec.alts:
        values: dict[str, Callable[[AlleleScore], object]] = {
            "HNET_LLR": lambda s: s.llr,
            "HNET_LLR_FWD": lambda s: s.llr_fwd,
            "HNET_LLR_REV": lambda s: s.llr_rev,
            "HNET_LLR_FLANK": lambda s: s.flank_llr,
            "HNET_BSHIFT": lambda s: s.bshift,
            "HNET_CLIPPED": lambda s: int(s.clipped),
        }
        scores = [a.score if a.score is not None and a.score.strands else None for a in p.alleles]
        for key in keys:
            if key == "HNET_STATUS":
                info.append(f"{key}=" + ",".join(a.status for a in p.alleles))
            elif any(s is not None for s in scores):
                info.append(f"{key}=" + ",".join(_vcf_value(None if s is None else values[key](s)) for s in scores))
    f[7] = ";".join(info) or "."
    return "\t".join(f) + "\n"


def _vcf_value(x) -> str:
    return "." if x is None else str(x) if isinstance(x, int) else f"{x:.6g}"


def _tsv_rows(p: RecordPlan) -> str:
    rec, lines = p.rec, []
    for a in p.alleles:
        s = a.score if a.score is not None and a.score.strands else None
        t = a.task
        fields = [
            rec.chrom,
            str(rec.pos),
            rec.id or ".",
            rec.ref or ".",
            a.alt,
            a.kind or ".",
            a.status,
            _num(s and s.llr),
            _num(s and s.llr_fwd),
            _num(s and s.llr_rev),
            _num(s and s.flank_llr),
            _num(s and s.bshift),
            _num(s and int(s.clipped)),
            _num(t and t.fp.start),
            _num(t and t.fp.end),
            _num(t and t.window.lo),
            _num(t and t.window.hi),
        ]
        lines.append("\t".join(fields) + "\n")
    return "".join(lines)


def _num(x) -> str:
    return "" if x is None else str(x) if isinstance(x, int) else f"{x:.6f}"


def _groups(it: Iterator, n: int) -> Iterator[list]:
    while group := list(islice(it, n)):
        yield group


def score_vcf(
    engine: InferenceEngine,
    genome,
    vcf_path: str | Path,
    out: str | Path,
    cfg: VariantScoringConfig,
    identity: dict[str, str] | None = None,
    progress: bool = False,
    warn: Callable[[str], None] = log.warning,
) -> VariantSummary:
    """Score every ALT allele of ``vcf_path`` and write ``out`` (.vcf.gz + .tbi) and the TSV beside it."""
    import pysam
    from pysam.libcbgzf import BGZFile
    from tqdm import tqdm

    cfg.validate()
    layout = cfg.layout()
    out_vcf, out_tbi, out_tsv = output_paths(out)
    t0 = time.perf_counter()
    survey = survey_vcf(vcf_path, genome.sizes, genome.path)
    summary = VariantSummary()
    hierarchical = engine.model.config.num_stages > 0
    with open_vcf(vcf_path) as vcf, ExitStack() as stack:
        for chrom in survey.contigs:  # tabix needs every contig declared
            if chrom not in vcf.header.contigs:
                vcf.header.contigs.add(chrom, length=genome.sizes[chrom])
        header, keys, summary.replaced_fields = output_header(vcf.header, cfg, hierarchical, identity or {})
        tmp_tbi = stack.enter_context(atomic_path(out_tbi))  # entered first, so renamed after the data
        tmp_vcf = stack.enter_context(atomic_path(out_vcf))
        tmp_tsv = stack.enter_context(atomic_path(out_tsv))
        bar = stack.enter_context(
            tqdm(total=survey.records, unit="rec", disable=not progress, desc="variants", dynamic_ncols=True)
        )
        # index=None is pysam's own default, spelled out because its type stub omits that default
        with BGZFile(str(tmp_vcf), "wb", index=None) as vcf_out, tmp_tsv.open("w") as tsv:
            vcf_out.write(header.encode())
            tsv.write("\t".join(TSV_COLUMNS) + "\n")
            for group in _groups(records(vcf, vcf_path), RECORDS_PER_GROUP):
                first = summary.records + 1
                plans = [
                    plan_record(rec, genome, cfg, layout, vcf_path, first + i, warn) for i, rec in enumerate(group)
                ]
                summary.jobs += score_plans(engine, genome, plans, cfg)
                for p in plans:
                    vcf_out.write(_annotate(p, keys).encode())
                    _count(summary, p)
                    tsv.write(_tsv_rows(p))
                bar.update(len(group))
        with quiet_htslib():  # a POS 0 record (kept, flagged bad_pos) makes htslib warn on its own
            pysam.tabix_index(str(tmp_vcf), preset="vcf", force=True, index=str(tmp_tbi))
    summary.seconds = time.perf_counter() - t0
    summary.files = [out_vcf, out_tbi, out_tsv]
    return summary


def _count(summary: VariantSummary, p: RecordPlan) -> None:
    summary.records += 1
    summary.ref_mismatch_records += p.ref_mismatch
    for a in p.alleles:
        summary.alleles += 1
        if a.status.startswith("scored"):
            summary.scored += 1
            summary.kinds[a.kind] += 1
            summary.one_strand += a.status != "scored"
            summary.clipped += bool(a.score and a.score.clipped)
        else:
            summary.skipped[a.status] += 1
