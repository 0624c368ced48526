"""VCF, bgzipped VCF and BCF input through pysam: one reader for every command that takes variants.

``survey_vcf`` reads the records once before any model work, so that what would otherwise fail hours into
a run fails at once, in one line: an unreadable file, a contig the FASTA lacks (with the ``chr1`` vs ``1``
fix spelled out), a contig whose declared length differs from the FASTA's (another assembly), records
that are not sorted (the output is tabix-indexed, which needs sorted input). ``classify_allele`` decides,
per ALT allele, whether it can be scored and what kind of change it is.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hnet_genomics.errors import DataError

KINDS = ("SNV", "MNV", "INS", "DEL", "COMPLEX")
SKIP_REASONS = (
    "no_alt",  # ALT is '.'
    "star",  # '*': the allele is deleted by an overlapping variant
    "symbolic",  # <DEL>, breakends
    "non_acgt",  # REF or ALT holds N or another ambiguity code: nothing to compare
    "too_long",  # REF or ALT longer than --max-len
    "no_change",  # ALT equals REF
    "repeat_too_long",  # an indel whose repeat makes its footprint longer than --max-len
    "contig_edge",  # no strand can score it (the alleles differ at the first base each strand reads)
    "ref_mismatch",  # REF is not the FASTA's (FILTER=REF_MISMATCH)
    "bad_pos",  # POS < 1: a malformed record
)
_BASES = frozenset("ACGT")


@contextlib.contextmanager
def quiet_htslib() -> Iterator[None]:
    """htslib prints its own warnings (undeclared contigs, ...) to stderr; ours name the file and record."""
    import pysam

    previous = pysam.set_verbosity(0)
    try:
        yield
    finally:
        pysam.set_verbosity(previous)


def open_vcf(path: str | Path):
    """``pysam.VariantFile`` for reading, with a one-line error for a missing or non-VCF file."""
    import pysam

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file" if not path.exists() else f"{path}: not a regular file")
    try:
        with quiet_htslib():
            return pysam.VariantFile(str(path), "r")
    except NotImplementedError:  # htslib seeks, which plain gzip cannot
        raise DataError(
            f"{path}: gzip-compressed but not bgzip; recompress it with `zcat {path} | bgzip -c > "
            f"NEW.vcf.gz` (bgzip comes with htslib)"
        ) from None
    except (ValueError, OSError) as e:
        raise DataError(f"{path}: not a readable VCF, VCF.gz or BCF file ({e})") from None


def records(vcf, path: str | Path) -> Iterator:
    """The records of an open ``VariantFile``; a malformed line is a ``DataError`` naming the last good one."""
    last = "the header"
    it = iter(vcf)
    with quiet_htslib():
        while True:
            try:
                rec = next(it)
            except StopIteration:
                return
            except (ValueError, OSError) as e:
                raise DataError(f"{path}: malformed record after {last} ({e})") from None
            last = f"{rec.chrom}:{rec.pos}"
            yield rec


@dataclass
class VcfSurvey:
    """What a first pass over the records found."""

    records: int = 0
    contigs: dict[str, int] = field(default_factory=dict)  # records per contig, in file order


def contig_hint(name: str, sizes: dict[str, int]) -> str:
    """How to fix a contig name the FASTA lacks, when another spelling of it is there."""
    candidates = [
        f"chr{name}",
        name[3:] if name.startswith("chr") else None,
        {"chrM": "MT", "MT": "chrM", "chrMT": "MT", "M": "chrM"}.get(name),
    ]
    match = next((c for c in candidates if c and c in sizes), None)
    if match:
        return (
            f"the FASTA calls it '{match}': rename the VCF's contigs (`bcftools annotate --rename-chrs "
            f"map.txt`, lines like '{name} {match}') or use a FASTA named like the VCF"
        )
    known = ", ".join(list(sizes)[:5]) + (", ..." if len(sizes) > 5 else "")
    return f"FASTA records: {known}; was the VCF called against another reference?"


def survey_vcf(path: str | Path, sizes: dict[str, int], fasta: str | Path = "the FASTA") -> VcfSurvey:
    """Check every record's contig and order against the FASTA; count records per contig."""
    path = Path(path)
    survey = VcfSurvey()
    with open_vcf(path) as vcf:
        for name, contig in vcf.header.contigs.items():
            if name in sizes and contig.length is not None and contig.length != sizes[name]:
                raise DataError(
                    f"{path}: header declares contig '{name}' with length {contig.length:,} but it has "
                    f"{sizes[name]:,} bases in {fasta}: the VCF was made against another assembly"
                )
        prev_chrom, prev_pos = None, 0
        for rec in records(vcf, path):
            survey.records += 1
            chrom, pos = rec.chrom, rec.pos
            if chrom != prev_chrom:
                if chrom in survey.contigs:
                    raise DataError(
                        f"{path}: record {survey.records} ({chrom}:{pos}) returns to contig '{chrom}' "
                        f"after '{prev_chrom}': the VCF is not sorted (`bcftools sort`)"
                    )
                if chrom not in sizes:
                    raise DataError(
                        f"{path}: record {survey.records} ({chrom}:{pos}): contig '{chrom}' is not in "
                        f"{fasta}; {contig_hint(chrom, sizes)}"
                    )
                survey.contigs[chrom] = 0
                prev_chrom, prev_pos = chrom, 0
            if pos < prev_pos:
                raise DataError(
                    f"{path}: record {survey.records} ({chrom}:{pos}) comes after {chrom}:{prev_pos}: "
                    f"the VCF is not sorted (`bcftools sort`)"
                )
            prev_pos = pos
            survey.contigs[chrom] += 1
    return survey


def classify_allele(ref: str, alt: str | None, max_len: int) -> tuple[str, str | None]:
    """``(kind, skip reason)`` of one ALT allele: kind is SNV, MNV, INS, DEL or COMPLEX (after trimming the
    bases REF and ALT share at either end), the reason None when the allele can be scored."""
    if alt is None or alt == ".":
        return "", "no_alt"
    if alt == "*":
        return "", "star"
    if alt.startswith("<") or "[" in alt or "]" in alt or alt.startswith(".") or alt.endswith("."):
        return "", "symbolic"
    ref_u, alt_u = ref.upper(), alt.upper()
    if not set(alt_u) <= _BASES or not set(ref_u) <= _BASES:
        return "", "non_acgt"
    if len(ref_u) > max_len or len(alt_u) > max_len:
        return "", "too_long"
    if ref_u == alt_u:
        return "", "no_change"
    if len(ref_u) == len(alt_u):
        return ("SNV" if len(ref_u) == 1 else "MNV"), None
    r, a = trim_shared(ref_u, alt_u)
    return ("INS" if not r else "DEL" if not a else "COMPLEX"), None


def trim_shared(ref: str, alt: str) -> tuple[str, str]:
    """REF and ALT without the bases they share at the start, then at the end."""
    i = 0
    while i < min(len(ref), len(alt)) and ref[i] == alt[i]:
        i += 1
    ref, alt = ref[i:], alt[i:]
    j = 0
    while j < min(len(ref), len(alt)) and ref[-1 - j] == alt[-1 - j]:
        j += 1
    return ref[: len(ref) - j], alt[: len(alt) - j]
