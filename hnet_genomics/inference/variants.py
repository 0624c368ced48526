"""Zero-shot variant effect: the log-likelihood ratio of an ALT allele against REF in the same flanks.

Window. The REF allele (as written in the VCF record, from POS over len(REF) bases) is centred in a window
of ``window`` reference bases: ``left = (window - len(REF)) // 2`` bases before it and the rest after it,
both cut short at the ends of the contig. The ALT window is the same left flank, the ALT allele and the same
right flank, so it is ``len(ALT) - len(REF)`` bases longer or shorter. An indel is therefore scored exactly
as the record writes it: VCF left-aligns indels and keeps one shared anchor base, which sits in both
windows; records are not re-normalised (run ``bcftools norm -f REF.fa`` first for other representations).

Score. ``LLR = ln P(ALT window) - ln P(REF window)`` in nats, the sum over the window's bases of
``ln p(x_t | x_<t)``. The model is causal, so every base before the first one where the two windows differ
has the same context and the same value in both and cancels exactly: those terms are not evaluated, and the
sum runs from the first differing base to the end of the window (the variant's bases and how they change
the prediction of the right flank). On the reverse strand both windows are reverse-complemented and the
same holds from the other side. ``--strand both`` reports the mean of the two strands. The first base of
a window is never predicted, so an allele that differs at it (a variant at a contig's first base, or its
last on the reverse strand) is skipped as ``contig_edge``. An indel's two windows differ in length, so its
LLR also carries the log-probability of the bases it adds or removes (about -1.3 nats per inserted base,
+1.3 per deleted one, for a model at 1.84 bits per base): compare indels with indels of similar length,
not with SNVs.

HNET_BSHIFT. Stage-1 chunk boundaries (forward strand) that the ALT allele moves within ``flank`` bases of
it: the bases of the two windows are aligned (left flank base to base, the alleles from their first base,
the right flank base to base after the length change); it counts aligned bases within ``flank`` of the
allele whose boundary decision differs, plus the boundaries on allele bases without a partner (bases an
indel deletes or inserts). A causal router cannot move boundaries to the left of the variant, so the count
comes from the allele and the right flank.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hnet_genomics.data.encoding import reverse_complement
from hnet_genomics.errors import ConfigError

STRANDS = ("fwd", "both")


@dataclass
class VariantScoringConfig:
    """How alleles are windowed and scored (``score-variants`` options of the same names)."""

    window: int = 1024
    strand: str = "both"
    max_len: int = 50
    bshift_flank: int = 10
    strict: bool = False

    def validate(self) -> None:
        if self.strand not in STRANDS:
            raise ConfigError(f"--strand: '{self.strand}' is not one of {', '.join(STRANDS)}")
        if self.max_len < 1:
            raise ConfigError(f"--max-len must be at least 1, got {self.max_len}")
        if self.window < 2 * self.max_len + 2:
            raise ConfigError(
                f"--window {self.window} leaves no flank around alleles of up to --max-len "
                f"{self.max_len} bases (need at least {2 * self.max_len + 2})"
            )
        if self.bshift_flank < 0:
            raise ConfigError(f"--bshift-flank must be >= 0, got {self.bshift_flank}")


@dataclass(frozen=True)
class AlleleWindow:
    """Flanks (reference bases, data policies applied) around an allele at ``chrom:start`` (0-based)."""

    chrom: str
    start: int  # first base of the left flank
    left: bytes
    right: bytes

    def sequence(self, allele: bytes, strand: str = "+") -> bytes:
        seq = self.left + allele + self.right
        return reverse_complement(seq) if strand == "-" else seq


def flank_lengths(pos0: int, ref_len: int, window: int, contig_len: int) -> tuple[int, int]:
    """(left, right) flank lengths of a REF allele at 0-based ``pos0``, centred in ``window`` and clipped."""
    left = (window - ref_len) // 2
    right = window - ref_len - left
    return min(left, pos0), min(right, contig_len - pos0 - ref_len)


def common_prefix(a: bytes, b: bytes) -> int:
    n = min(len(a), len(b))
    x, y = np.frombuffer(a[:n], np.uint8), np.frombuffer(b[:n], np.uint8)
    diff = np.flatnonzero(x != y)
    return int(diff[0]) if len(diff) else n


def first_difference(ref_seq: bytes, alt_seq: bytes) -> int:
    """Index of the first base where two windows differ: every log-likelihood term before it cancels."""
    return common_prefix(ref_seq, alt_seq)


def llr_from_log_probs(lp_ref: np.ndarray, lp_alt: np.ndarray, start: int) -> float:
    """Sum of ``ln p`` from ``start`` on, ALT minus REF (``start`` = first differing base, at least 1)."""
    return float(np.sum(lp_alt[start:], dtype=np.float64) - np.sum(lp_ref[start:], dtype=np.float64))


def boundary_shift(b_ref: np.ndarray, b_alt: np.ndarray, left: int, ref_len: int, alt_len: int, flank: int) -> int:
    """HNET_BSHIFT from forward-strand stage-1 boundary masks of the REF and ALT windows (module docstring)."""
    lo = max(0, left - flank)
    moved = int(np.count_nonzero(b_ref[lo:left] != b_alt[lo:left]))
    shared = min(ref_len, alt_len)
    moved += int(np.count_nonzero(b_ref[left : left + shared] != b_alt[left : left + shared]))
    moved += int(np.count_nonzero(b_ref[left + shared : left + ref_len]))
    moved += int(np.count_nonzero(b_alt[left + shared : left + alt_len]))
    r0, a0 = left + ref_len, left + alt_len
    n = min(flank, len(b_ref) - r0, len(b_alt) - a0)
    moved += int(np.count_nonzero(b_ref[r0 : r0 + n] != b_alt[a0 : a0 + n]))
    return moved


@dataclass
class AlleleScore:
    llr_fwd: float
    llr_rev: float | None = None
    bshift: int | None = None

    @property
    def llr(self) -> float:
        return self.llr_fwd if self.llr_rev is None else (self.llr_fwd + self.llr_rev) / 2
