"""Zero-shot variant effect: the log-likelihood ratio of an ALT allele against REF in the same flanks.

Footprint. An allele is reduced to the reference bases it changes, the same on either strand: REF and ALT
lose the bases they share at the start and then at the end (the VCF anchor base included), and an insertion
or deletion that could sit at several places of a repeat spans all of them, from its left- to its
right-aligned position (``footprint``). ALT over the footprint is what any of those placements gives.

Window. Every window holds at least ``flank`` reference bases on each side of the footprint, and its two ends
lie on a grid of odd spacing ``grid`` that the contig's reverse complement maps onto itself (``Grid``), so
the mirrored variant on the reverse-complemented genome gets the mirrored window: scores are strand-neutral
by construction. With ``grid`` 1 every window is the footprint with exactly ``flank`` bases on each side; a
coarser grid gives alleles within ``grid`` bases of each other one shared window, which is what lets them
share computation. ``window_layout`` picks ``flank`` and ``grid`` so an SNV's window is at most the model's
training window. A window that would cross a contig end is cut there (``clipped``).

Score, per strand. ``LLR = ln P(ALT window) - ln P(REF window)`` in nats: the sum over the window's bases of
``ln p(x_t | x_<t)``. The model is causal, so every term before the first base where the two windows differ
cancels exactly; the sum runs from there to the window's end. The reverse strand is the same on the exact
reverse complement of both windows. Bases that are not A, C, G or T contribute nothing (their terms are
left out of both sums). The first base of a window has no prediction, so a strand on which the alleles
differ at the window's first base (a footprint at a contig's first base on the forward strand, at its last
on the reverse) cannot score it; the other strand still does. ``flank`` LLR: only the terms of the bases
after the footprint, which REF and ALT share base for base: how the allele changes the prediction of the
downstream sequence, with the same number of terms for both alleles (the total LLR of an indel also holds
the likelihood of the bases it adds or removes, about 1.3 nats each for a model at 1.84 bits per base).

Computation (``score_tasks``). Alleles with the same window form a job per strand: the window up to a cut
point at which none of them has begun (``flank`` bases in from the window's start, on that strand) runs
once, and the REF and every ALT continuation run from the model state it leaves, batched
(``InferenceEngine.run_shared_prefix``). This equals one forward pass over each whole window up to float
rounding.

HNET_BSHIFT. Stage-1 chunk boundaries the ALT allele moves within ``bshift_flank`` bases of the footprint,
counted on each scored strand and added: the bases of the two windows are aligned (flank to flank, the
footprints from their first base), and it counts aligned bases whose decision differs plus the boundaries
on footprint bases without a partner. A causal router cannot move boundaries before the footprint, so the
count comes from the footprint and the bases after it, on each strand.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from hnet_genomics.data.encoding import reverse_complement
from hnet_genomics.errors import ConfigError
from hnet_genomics.inference.engine import Continued, InferenceEngine

STRANDS = ("fwd", "both")
_ACGT = np.zeros(256, dtype=bool)
_ACGT[list(b"ACGTacgt")] = True


@dataclass
class VariantScoringConfig:
    """How alleles are windowed and scored (``score-variants`` options of the same names)."""

    window: int = 1024
    strand: str = "both"
    max_len: int = 50
    bshift_flank: int = 10
    strict: bool = False
    grid: int | None = None  # odd window-grid spacing; None: ``auto_grid(window)``

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
        self.layout()

    def layout(self) -> WindowLayout:
        return window_layout(self.window, self.grid)

    @property
    def strands(self) -> tuple[str, ...]:
        return ("+", "-") if self.strand == "both" else ("+",)


@dataclass(frozen=True)
class WindowLayout:
    """At least ``flank`` bases on each side of a footprint, window ends on a grid of spacing ``grid``."""

    flank: int
    grid: int

    @property
    def snv_window(self) -> int:
        """The window of a one-base footprint (not clipped): 2 flank + grid bases."""
        return 2 * self.flank + self.grid


def auto_grid(window: int) -> int:
    """The odd grid spacing near window / 11 that leaves an SNV the longest window within ``window`` (93 for
    1,024: flank 465, SNV window 1,023). A coarser grid lets more nearby alleles share a window; a finer one
    keeps flanks closer to equal (``--grid 1``: exactly equal)."""
    best: tuple[int, float, int] = (0, 0.0, 1)
    for g in range(max(3, window // 16) | 1, window // 8 + 1, 2):
        m = (window // g - 1) // 2
        best = max(best, (g * (2 * m + 1), -abs(g - window / 11), g))
    return best[2]


def window_layout(window: int, grid: int | None = None) -> WindowLayout:
    """Flank and grid with flank a multiple of grid (so one grid cell of footprint starts shares one window)
    and an SNV's window, (2 m + 1) grid bases, at most ``window``."""
    g = auto_grid(window) if grid is None else grid
    if g < 1 or g % 2 == 0:
        raise ConfigError(
            f"--grid must be an odd number >= 1 (the reverse complement maps only an odd grid onto itself), got {g}"
        )
    m = (window // g - 1) // 2
    if m < 1:
        raise ConfigError(f"--grid {g} is too coarse for --window {window}: it needs a window of at least {3 * g}")
    return WindowLayout(m * g, g)


@dataclass(frozen=True)
class Grid:
    """Positions (between bases, 0..size) congruent to ``offset`` modulo ``spacing``, with 2 offset = size
    modulo spacing: x is on the grid exactly when size - x is, so the reverse complement keeps it."""

    size: int
    spacing: int

    @property
    def offset(self) -> int:
        return self.size * (self.spacing + 1) // 2 % self.spacing

    def down(self, x: int) -> int:
        return x - (x - self.offset) % self.spacing

    def up(self, x: int) -> int:
        return x + (self.offset - x) % self.spacing


@dataclass(frozen=True)
class Footprint:
    """The reference bases ``[start, start + len(ref))`` an allele changes and what ALT puts there (upper case)."""

    start: int
    ref: bytes
    alt: bytes

    @property
    def end(self) -> int:
        return self.start + len(self.ref)


def footprint(
    fetch: Callable[[int, int], bytes], size: int, pos0: int, ref: bytes, alt: bytes, limit: int
) -> Footprint | None:
    """The strand-neutral footprint of REF -> ALT at 0-based ``pos0`` (module docstring); ``fetch(start, end)``
    reads reference bases. None when an indel's repeat makes it longer than ``limit`` bases."""
    r, a = ref.upper(), alt.upper()
    i = 0
    while i < min(len(r), len(a)) and r[i] == a[i]:
        i += 1
    j = 0
    while j < min(len(r), len(a)) - i and r[len(r) - 1 - j] == a[len(a) - 1 - j]:
        j += 1
    r, a, start = r[i : len(r) - j], a[i : len(a) - j], pos0 + i
    if r and a:
        return Footprint(start, r, a)
    lo, hi = max(0, start - limit - 1), min(size, start + len(r) + limit + 1)
    seq = fetch(lo, hi).upper()
    p = start - lo  # in seq
    if r:  # deletion of seq[p : p + d]
        d = len(r)
        left, right = p, p
        while left > 0 and seq[left - 1] == seq[left + d - 1]:
            left -= 1
        while right + d < len(seq) and seq[right] == seq[right + d]:
            right += 1
        ref_fp, alt_fp = seq[left : right + d], seq[left:p] + seq[p + d : right + d]
    else:  # insertion of ``a`` before seq[p]
        left, right = p, p
        ins = a
        while left > 0 and ins[-1] == seq[left - 1]:
            ins, left = seq[left - 1 : left] + ins[:-1], left - 1
        ins = a
        while right < len(seq) and ins[0] == seq[right]:
            ins, right = ins[1:] + seq[right : right + 1], right + 1
        ref_fp, alt_fp = seq[left:right], seq[left:p] + a + seq[p:right]
    if max(len(ref_fp), len(alt_fp)) > limit:
        return None
    return Footprint(lo + left, ref_fp, alt_fp)


@dataclass(frozen=True)
class AlleleWindow:
    """Where an allele is scored: the window ``[lo, hi)`` of ``chrom`` (clipped to the contig) and the cut
    points of its two strands (``cut_fwd``: the forward pass's prefix ends there; ``cut_rev``: the reverse
    pass's prefix, read from the window's end, ends there)."""

    chrom: str
    lo: int
    hi: int
    cut_fwd: int
    cut_rev: int
    clipped: bool


def allele_window(chrom: str, size: int, fp: Footprint, layout: WindowLayout) -> AlleleWindow:
    grid = Grid(size, layout.grid)
    lo, hi = grid.down(fp.start - layout.flank), grid.up(fp.end + layout.flank)
    return AlleleWindow(
        chrom,
        max(lo, 0),
        min(hi, size),
        max(lo + layout.flank, 0),
        min(hi - layout.flank, size),
        lo < 0 or hi > size,
    )


@dataclass
class StrandScore:
    llr: float
    flank_llr: float | None
    bshift: int


@dataclass
class AlleleScore:
    """Per strand ("+", "-") the scores of the strands that could score the allele."""

    strands: dict[str, StrandScore] = field(default_factory=dict)
    clipped: bool = False

    def _mean(self, key: str) -> float | None:
        values = [v for s in self.strands.values() if (v := getattr(s, key)) is not None]
        return float(np.mean(values)) if values else None

    @property
    def llr(self) -> float | None:
        return self._mean("llr")

    @property
    def flank_llr(self) -> float | None:
        return self._mean("flank_llr")

    @property
    def llr_fwd(self) -> float | None:
        return self.strands["+"].llr if "+" in self.strands else None

    @property
    def llr_rev(self) -> float | None:
        return self.strands["-"].llr if "-" in self.strands else None

    @property
    def bshift(self) -> int:
        return sum(s.bshift for s in self.strands.values())


@dataclass
class WindowJob:
    """One window on one strand: the prefix every allele shares, then the REF continuation and one per ALT."""

    window: AlleleWindow
    strand: str
    bases: bytes  # the window's reference bases [lo, hi), data policies applied
    alts: list[Footprint] = field(default_factory=list)
    index: dict[Footprint, int] = field(default_factory=dict)  # position of each footprint in ``alts``

    def __hash__(self) -> int:  # a job is its window and strand
        return hash((self.window, self.strand))

    def _cut(self) -> int:
        return (self.window.cut_fwd if self.strand == "+" else self.window.cut_rev) - self.window.lo

    def prefix(self) -> bytes:
        c = self._cut()
        return self.bases[:c] if self.strand == "+" else reverse_complement(self.bases[c:])

    def sequence(self, fp: Footprint | None) -> bytes:
        """The window's bases (forward orientation) with ``fp``'s ALT in place (None: the reference)."""
        if fp is None:
            return self.bases
        i, j = fp.start - self.window.lo, fp.end - self.window.lo
        return self.bases[:i] + match_case(fp.alt, self.bases[i:j]) + self.bases[j:]

    def suffix(self, fp: Footprint | None) -> bytes:
        """The continuation with ``fp``'s ALT in place (None: the reference), in the pass's orientation."""
        c, seq = self._cut(), self.sequence(fp)
        if self.strand == "+":
            return seq[c:]
        return reverse_complement(seq[: c + len(seq) - len(self.bases)])

    def suffixes(self) -> list[bytes]:
        return [self.suffix(None)] + [self.suffix(fp) for fp in self.alts]

    def before_footprint(self, fp: Footprint) -> int:
        """Bases of the continuation before ``fp`` on this strand."""
        return fp.start - self.window.cut_fwd if self.strand == "+" else self.window.cut_rev - fp.end


def match_case(alt: bytes, ref: bytes) -> bytes:
    """ALT in lower case where the reference it replaces is all lower case (a model that reads soft-masking)."""
    return alt.lower() if ref and ref.islower() else alt


def can_score(job: WindowJob, fp: Footprint) -> bool:
    """False when the REF and ALT windows differ at the first base the strand's pass reads (it has no
    prediction): a footprint at a contig's first base on the forward strand, at its last on the reverse."""
    ref, alt = job.bases, job.sequence(fp)
    return first_difference(ref, alt) > 0 if job.strand == "+" else first_difference(ref[::-1], alt[::-1]) > 0


def strand_score(job: WindowJob, fp: Footprint, ref: Continued, alt: Continued, bshift_flank: int) -> StrandScore:
    """LLR, flank LLR and boundary shift of ``fp`` from the REF and ALT continuations of ``job``."""
    ref_seq, alt_seq = job.suffix(None), job.suffix(fp)
    start = first_difference(ref_seq, alt_seq)
    pre = job.before_footprint(fp)
    lp_ref = _masked(ref.log_probs, ref_seq)
    lp_alt = _masked(alt.log_probs, alt_seq)
    llr = float(np.sum(lp_alt[start:], dtype=np.float64) - np.sum(lp_ref[start:], dtype=np.float64))
    post_ref, post_alt = pre + len(fp.ref), pre + len(fp.alt)
    flank = None  # no base after the footprint on this strand (the window ends at a contig end)
    if post_alt < len(lp_alt):
        flank = float(np.sum(lp_alt[post_alt:], dtype=np.float64) - np.sum(lp_ref[post_ref:], dtype=np.float64))
    moved = boundary_shift(ref.boundaries, alt.boundaries, pre, len(fp.ref), len(fp.alt), bshift_flank)
    return StrandScore(llr, flank, moved)


def _masked(log_probs: np.ndarray, seq: bytes) -> np.ndarray:
    """Terms of bases that are not A, C, G or T set to 0 (they contribute nothing)."""
    return np.where(_ACGT[np.frombuffer(seq, np.uint8)], log_probs, 0.0)


def first_difference(a: bytes, b: bytes) -> int:
    """Index of the first base where two sequences differ: every log-likelihood term before it cancels."""
    n = min(len(a), len(b))
    x, y = np.frombuffer(a[:n], np.uint8), np.frombuffer(b[:n], np.uint8)
    diff = np.flatnonzero(x != y)
    return int(diff[0]) if len(diff) else n


def boundary_shift(b_ref: np.ndarray, b_alt: np.ndarray, left: int, ref_len: int, alt_len: int, flank: int) -> int:
    """HNET_BSHIFT of one strand from the stage-1 boundary masks of the REF and ALT sequences, the footprint
    ``left`` bases in (module docstring)."""
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
class AlleleTask:
    """One allele to score in ``window``; ``score`` is filled in (None: no strand could score it)."""

    window: AlleleWindow
    fp: Footprint
    score: AlleleScore | None = None


def score_tasks(
    engine: InferenceEngine, tasks: list[AlleleTask], cfg: VariantScoringConfig, read: Callable[[AlleleWindow], bytes]
) -> int:
    """Score every task on the strands ``cfg`` asks for, one job per window and strand (identical footprints
    run once); ``read`` gives a window's reference bases. Returns the number of jobs run."""
    jobs: dict[tuple[AlleleWindow, str], WindowJob] = {}
    bases: dict[AlleleWindow, bytes] = {}
    wanted: list[list[tuple[str, WindowJob]]] = []
    for t in tasks:
        if t.window not in bases:
            bases[t.window] = read(t.window)
        mine = []
        for s in cfg.strands:
            job = jobs.setdefault((t.window, s), WindowJob(t.window, s, bases[t.window]))
            if can_score(job, t.fp):
                if t.fp not in job.index:
                    job.index[t.fp] = len(job.alts)
                    job.alts.append(t.fp)
                mine.append((s, job))
        wanted.append(mine)
    runnable = [j for j in jobs.values() if j.alts]
    results = dict(
        engine.run_shared_prefix(
            runnable,
            lambda j: np.frombuffer(j.prefix(), np.uint8),
            lambda j: [np.frombuffer(x, np.uint8) for x in j.suffixes()],
        )
    )
    for t, mine in zip(tasks, wanted):
        if mine:
            score = AlleleScore(clipped=t.window.clipped)
            for s, job in mine:
                out = results[job]
                score.strands[s] = strand_score(job, t.fp, out[0], out[1 + job.index[t.fp]], cfg.bshift_flank)
            t.score = score
    return len(runnable)
