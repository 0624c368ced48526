"""`score-variants`: scores equal brute-force forward passes over whole windows, are strand-neutral on the mirrored
genome, handle N and contig ends, share work between nearby alleles, keep every record; bad input is one line."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pysam
import pytest
import torch

from hnet_genomics import build_model, load_config
from hnet_genomics.cli import main
from hnet_genomics.data import demo
from hnet_genomics.data.encoding import reverse_complement
from hnet_genomics.data.genome import Genome
from hnet_genomics.data.vcf import classify_allele, trim_shared
from hnet_genomics.export.variant_scores import score_vcf
from hnet_genomics.inference.engine import InferenceEngine
from hnet_genomics.inference.variants import (
    Grid,
    VariantScoringConfig,
    auto_grid,
    boundary_shift,
    footprint,
    window_layout,
)

HLA = "BA000025.2"
WINDOW = 200
LAYOUT = window_layout(WINDOW)  # flank 90, grid 15: an SNV's window holds 195 bases
SIZE = 30_003  # not a multiple of the grid spacing, so the grid must be placed for the mirror to see it
SLICE = (100_000, 100_000 + SIZE)  # the test contig: 30 kb of the HLA region, and its reverse complement
GAP = (2_500, 2_540)  # an assembly gap of Ns in the third contig
HEADER = [
    "##fileformat=VCFv4.2",
    f"##contig=<ID=fwd,length={SIZE}>",
    '##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">',
    "##source=test",
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
]


@pytest.fixture(scope="module")
def fasta(tmp_path_factory) -> Path:
    """Contigs 'fwd' (30 kb of real HLA sequence), 'rev' (its reverse complement) and 'gap' (5 kb with Ns)."""
    hla = Genome(demo.HUMAN_FASTA)
    fwd = hla.fetch(HLA, *SLICE).upper()
    gap = bytearray(hla.fetch(HLA, 200_000, 205_000).upper())
    gap[GAP[0] : GAP[1]] = b"N" * (GAP[1] - GAP[0])
    path = tmp_path_factory.mktemp("genome") / "local.fa"
    with open(path, "w") as f:
        for name, seq in (("fwd", fwd), ("rev", reverse_complement(fwd)), ("gap", bytes(gap))):
            f.write(f">{name}\n" + "\n".join(seq[i : i + 60].decode() for i in range(0, len(seq), 60)) + "\n")
    return path


@pytest.fixture(scope="module")
def genome(fasta) -> Genome:
    return Genome(fasta)


@pytest.fixture(scope="module", params=["dna/hnet_1stage_tiny", "dna/hnet_2stage_tiny"])
def model(request):
    torch.manual_seed(0)
    return build_model(load_config(request.param)).eval()


def base(genome: Genome, pos: int, n: int = 1, chrom: str = "fwd") -> str:
    return genome.fetch(chrom, pos - 1, pos - 1 + n).decode()


def other(b: str) -> str:
    return next(x for x in "ACGT" if x != b)


def example_records(genome: Genome) -> list[tuple[int, str, str, str]]:
    """(POS, REF, ALT, what it exercises) on real sequence, sorted: every kind, repeats, multi-allelic, contig
    ends, skips."""
    r = lambda pos, n=1: base(genome, pos, n)  # noqa: E731
    seq = genome.fetch("fwd", 0, SIZE).decode()
    poly_a = re.search("A{16}", seq).start()  # a 16-base poly-A run (0-based start)
    str_ca = re.search("(CA){5}", seq).start()
    str_ag = re.search("(AG){3}", seq).start()
    rows = [
        (1, r(1), other(r(1)), "SNV at the contig's first base: reverse strand only"),
        (1, r(1), "T" + r(1), "insertion before the first base (anchor on the right): reverse strand only"),
        (5_001, r(5_001), f"{other(r(5_001))},{r(5_001)}TT,<DEL>,*", "multi-allelic with symbolic and star"),
        (7_001, r(7_001, 3), "".join(other(b) for b in r(7_001, 3)), "MNV"),
        (9_001, r(9_001), r(9_001) + "GATTACA", "insertion"),
        (11_001, r(11_001, 6), r(11_001), "deletion"),
        (13_001, r(13_001, 3), other(r(13_001)) + other(r(13_003)), "complex"),
        (poly_a, r(poly_a, 2), r(poly_a), "deletion of one A of a 16-base poly-A run (window clipped)"),
        (str_ca, r(str_ca), r(str_ca) + "CA", "insertion of CA into (CA)5"),
        (str_ag + 1, r(str_ag + 1, 3), r(str_ag + 1), "deletion of GA from (AG)3"),
        (15_001, other(r(15_001)), r(15_001), "REF mismatch"),
        (17_001, r(17_001), r(17_001) + "A" * 60, "insertion longer than --max-len"),
        (19_001, r(19_001), ".", "no ALT"),
        (21_001, r(21_001), "N", "ALT N"),
        (23_001, r(23_001, 150), r(23_001), "REF longer than --max-len (and than a flank)"),
        (SIZE, r(SIZE), other(r(SIZE)), "SNV at the contig's last base: forward strand only"),
    ]
    return sorted(rows, key=lambda row: row[0])


def row_of(rows, what: str) -> tuple[int, str, str, str]:
    """The row described as ``what``, or else the first whose description starts with it."""
    return next((r for r in rows if r[3] == what), None) or next(r for r in rows if r[3].startswith(what))


def write_vcf(path: Path, rows, chrom: str = "fwd", header=HEADER) -> Path:
    lines = header + [f"{chrom}\t{p}\tv{i}\t{ref}\t{alt}\t50\tPASS\tDP={i}" for i, (p, ref, alt, *_) in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def tsv(path: Path) -> list[dict[str, str]]:
    lines = path.read_text().splitlines()
    keys = lines[0].split("\t")
    return [dict(zip(keys, ln.split("\t"))) for ln in lines[1:]]


def run(model, genome, tmp: Path, rows, name="out", chrom="fwd", **cfg) -> tuple[list[dict[str, str]], object]:
    header = [h.replace(f"ID=fwd,length={SIZE}", f"ID={chrom},length={genome.sizes[chrom]}") for h in HEADER]
    vcf = write_vcf(tmp / f"{name}.in.vcf", rows, chrom, header)
    engine = InferenceEngine(model, batch_size=5)  # batches mix continuations of several windows and lengths
    summary = score_vcf(engine, genome, vcf, tmp / f"{name}.vcf.gz", VariantScoringConfig(window=WINDOW, **cfg))
    return tsv(tmp / f"{name}.tsv"), summary


@pytest.fixture(scope="module")
def scored(model, genome, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("variants")
    rows = example_records(genome)
    table, summary = run(model, genome, tmp, rows)
    return tmp, rows, table, summary


# ---- brute force: one full forward pass per whole window ----------------------------------------------------


def terms(model, seq: bytes) -> tuple[np.ndarray, np.ndarray]:
    """ln p(x_t | x_<t) of every base of ``seq`` (NaN at t = 0; 0 where x_t is not A, C, G or T) by one forward
    pass over ``seq`` alone, and its stage-1 boundaries."""
    ids = torch.tensor(list(seq))[None]
    with torch.inference_mode():
        out = model(ids)
    lp = torch.log_softmax(out.logits[0, :-1].double(), -1).gather(-1, ids[0, 1:, None])[:, 0].numpy()
    lp = np.concatenate([[np.nan], lp])
    acgt = np.isin(np.frombuffer(seq, np.uint8), list(b"ACGT"))
    return np.where(acgt, lp, 0.0), out.boundary_masks[0][0].numpy()


def brute_force(model, genome, chrom, row: dict[str, str]) -> dict[str, tuple[float, float | None, int]]:
    """Per strand that can score it: (LLR, flank LLR, boundaries moved) from full forwards of the two windows."""
    lo, hi = int(row["window_start"]), int(row["window_end"])
    a, b = int(row["footprint_start"]), int(row["footprint_end"])
    ref_w = genome.fetch(chrom, lo, hi)
    alt_fp = alt_footprint(genome, chrom, row, a, b)
    alt_w = ref_w[: a - lo] + alt_fp + ref_w[b - lo :]
    out = {}
    for strand, (r, x, left) in {
        "+": (ref_w, alt_w, a - lo),
        "-": (reverse_complement(ref_w), reverse_complement(alt_w), hi - b),
    }.items():
        d = next((i for i in range(min(len(r), len(x))) if r[i] != x[i]), min(len(r), len(x)))
        if d == 0:
            continue
        (lp_r, b_r), (lp_x, b_x) = terms(model, r), terms(model, x)
        llr = float(lp_x[d:].sum() - lp_r[d:].sum())
        post_r, post_x = left + (b - a), left + len(alt_fp)
        flank = float(lp_x[post_x:].sum() - lp_r[post_r:].sum()) if post_x < len(x) else None
        assert np.array_equal(b_r[:left], b_x[:left])  # a causal router cannot move earlier boundaries
        out[strand] = (llr, flank, boundary_shift(b_r, b_x, left, b - a, len(alt_fp), 10))
    return out


def alt_footprint(genome, chrom, row, a: int, b: int) -> bytes:
    """What the record's ALT puts over the reference ``[a, b)``, applied where the record writes it."""
    pos0, ref, alt = int(row["pos"]) - 1, row["ref"].encode(), row["alt"].encode()
    lo, hi = min(a, pos0), max(b, pos0 + len(ref))
    seq = genome.fetch(chrom, lo, hi)
    changed = seq[: pos0 - lo] + alt + seq[pos0 - lo + len(ref) :]
    return changed[a - lo : len(changed) - (hi - b)]


def test_scores_equal_full_forward_passes_over_each_window_on_both_strands(model, genome, scored):
    _, _, table, summary = scored
    rows = [t for t in table if t["status"].startswith("scored")]
    assert {t["kind"] for t in rows} == {"SNV", "MNV", "INS", "DEL", "COMPLEX"}
    assert summary.scored == len(rows) == 12
    strands = {"scored": {"+", "-"}, "scored_fwd": {"+"}, "scored_rev": {"-"}}
    for t in rows:
        expected = brute_force(model, genome, "fwd", t)
        assert set(expected) == strands[t["status"]], t
        for strand, key in (("+", "llr_fwd"), ("-", "llr_rev")):
            if strand in expected:
                assert float(t[key]) == pytest.approx(expected[strand][0], abs=2e-5), t
            else:
                assert t[key] == ""
        assert float(t["llr"]) == pytest.approx(np.mean([v[0] for v in expected.values()]), abs=2e-5)
        flanks = [v[1] for v in expected.values() if v[1] is not None]
        assert (float(t["llr_flank"]) if flanks else None) == pytest.approx(
            np.mean(flanks) if flanks else None, abs=2e-5
        )
        if model.config.num_stages:
            assert int(t["bshift"]) == sum(v[2] for v in expected.values())


def test_windows_hold_a_full_flank_on_both_sides_and_end_on_the_mirror_invariant_grid(scored):
    _, _, table, _ = scored
    size, grid = SIZE, Grid(SIZE, LAYOUT.grid)
    for t in table:
        if not t["status"].startswith("scored"):
            continue
        lo, hi = int(t["window_start"]), int(t["window_end"])
        a, b = int(t["footprint_start"]), int(t["footprint_end"])
        clipped = t["clipped"] == "1"
        assert a - lo >= LAYOUT.flank or lo == 0
        assert hi - b >= LAYOUT.flank or hi == size
        for end in (lo, hi):  # on the grid, which is also the mirror's grid, unless cut at a contig end
            assert (clipped and end in (0, size)) or (end - grid.offset) % LAYOUT.grid == 0
            assert (clipped and end in (0, size)) or (size - end - grid.offset) % LAYOUT.grid == 0
        if b - a == 1 and not clipped:
            assert hi - lo == LAYOUT.snv_window <= WINDOW


def test_grid_1_gives_exactly_equal_flanks(model, genome, tmp_path):
    rows = [
        (5_001, base(genome, 5_001), other(base(genome, 5_001))),
        (5_002, base(genome, 5_002, 3), base(genome, 5_002)),
    ]
    table, _ = run(model, genome, tmp_path, rows, grid=1)
    for t in table:
        lo, hi, a, b = (int(t[k]) for k in ("window_start", "window_end", "footprint_start", "footprint_end"))
        assert a - lo == hi - b == window_layout(WINDOW, 1).flank == (WINDOW - 1) // 2


def test_footprint_spans_every_placement_of_an_indel_in_its_repeat(genome, scored):
    """Brute force: every position where the event gives the same ALT sequence lies inside the footprint."""
    _, _, table, _ = scored
    for t in table:
        if t["kind"] not in ("INS", "DEL") or not t["status"].startswith("scored"):
            continue
        pos0, ref, alt = int(t["pos"]) - 1, t["ref"], t["alt"]
        lo = max(0, pos0 - 80)
        seq = genome.fetch("fwd", lo, pos0 + 80).decode()
        p = pos0 - lo
        target = seq[:p] + alt + seq[p + len(ref) :]
        r, a = trim_shared(ref, alt)
        k = len(a) - len(r)
        if k > 0:  # insertion of k bases before position q
            places = [q for q in range(len(seq) + 1) if seq[:q] == target[:q] and seq[q:] == target[q + k :]]
            extent = (min(places), max(places))
        else:
            places = [q for q in range(len(seq) + k + 1) if seq[:q] + seq[q - k :] == target]
            extent = (min(places), max(places) - k)
        assert (int(t["footprint_start"]), int(t["footprint_end"])) == (lo + extent[0], lo + extent[1]), t


def test_footprint_trims_the_anchor_base_either_side():
    seq = b"GGGACGTTTTCAGG"

    def fetch(s: int, e: int) -> bytes:
        return seq[s:e]

    assert footprint(fetch, len(seq), 3, b"A", b"C", 10).start == 3  # SNV stays
    fp = footprint(fetch, len(seq), 6, b"TT", b"T", 10)  # one T of TTTT deleted: the whole run
    assert (fp.start, fp.ref, fp.alt) == (6, b"TTTT", b"TTT")
    fp = footprint(fetch, len(seq), 0, b"G", b"AG", 10)  # insertion before the first base, anchor on the right
    assert (fp.start, fp.ref, fp.alt) == (0, b"", b"A")
    fp = footprint(fetch, len(seq), 5, b"GT", b"GTT", 10)  # insertion into TTTT spans it
    assert (fp.start, fp.ref, fp.alt) == (6, b"TTTT", b"TTTTT")
    assert footprint(fetch, len(seq), 5, b"GT", b"GTT", 3) is None  # the repeat is longer than the limit


@pytest.mark.parametrize("size", [30_000, 30_001, 2_229_817])
@pytest.mark.parametrize("spacing", [1, 5, 31])
def test_grid_maps_onto_itself_under_reverse_complement(size, spacing):
    grid = Grid(size, spacing)
    for x in range(-40, 80):
        assert (size - grid.down(x)) == grid.up(size - x)


def test_auto_layout_fits_the_window():
    assert window_layout(1024) == window_layout(1024, auto_grid(1024)) and window_layout(1024).snv_window == 1023
    for w in (102, 200, 1000, 1024, 4096):
        layout = window_layout(w)
        assert layout.snv_window <= w and layout.grid % 2 == 1 and layout.flank % layout.grid == 0


# ---- strand symmetry -----------------------------------------------------------------------------------------


def mirrored(genome: Genome, row: tuple[int, str, str, str], size: int = SIZE) -> tuple[int, str, str, str]:
    """The same variant on the reverse-complemented contig, written as VCF writes it there (left anchor)."""
    pos, ref, alt, what = row
    r, a = trim_shared(ref, alt)
    i = 0  # trim_shared trims the shared start first
    while i < min(len(ref), len(alt)) and ref[i] == alt[i]:
        i += 1
    start = pos - 1 + i
    m_start = size - (start + len(r))
    m_ref, m_alt = reverse_complement(r.encode()).decode(), reverse_complement(a.encode()).decode()
    if m_ref and m_alt:
        return m_start + 1, m_ref, m_alt, what
    if m_start > 0:
        anchor = base(genome, m_start, 1, "rev")
        return m_start, anchor + m_ref, anchor + m_alt, what
    anchor = base(genome, 1, 1, "rev")
    return 1, m_ref + anchor, m_alt + anchor, what


def symmetry_rows(genome: Genome) -> list[tuple[int, str, str, str]]:
    rows = [r for r in example_records(genome) if "," not in r[2] and r[2] not in (".", "N") and "mismatch" not in r[3]]
    rows = [r for r in rows if len(r[1]) <= 50 and len(r[2]) <= 50]
    seq = genome.fetch("fwd", 0, SIZE).decode()
    poly_a = re.search("A{16}", seq).start()
    rows += [(poly_a + 8, "A", "G", "SNV inside a poly-A run"), (poly_a + 12, "AAAA", "A", "3 As deleted from the run")]
    return sorted(rows, key=lambda row: row[0])


def test_mirrored_variants_on_the_reverse_complemented_genome_score_the_same(model, genome, tmp_path):
    rows = symmetry_rows(genome)
    mirror = sorted(mirrored(genome, r) for r in rows)
    fwd, _ = run(model, genome, tmp_path, rows, "f")
    rev, _ = run(model, genome, tmp_path, mirror, "r", chrom="rev")
    by_what = {}
    for t, r in zip(fwd, rows):
        by_what[r[3]] = [t]
    for t, r in zip(rev, mirror):
        by_what[r[3]].append(t)
    assert len(by_what) == len(rows) >= 12
    swap = {"scored": "scored", "scored_fwd": "scored_rev", "scored_rev": "scored_fwd"}
    for what, (f, m) in by_what.items():
        assert f["status"].startswith("scored") and m["status"] == swap[f["status"]], what
        assert abs(float(f["llr"]) - float(m["llr"])) <= 1e-5, (what, f["llr"], m["llr"])
        for k1, k2 in (("llr_fwd", "llr_rev"), ("llr_rev", "llr_fwd")):
            assert (f[k1] == "") == (m[k2] == "")
            if f[k1]:
                assert abs(float(f[k1]) - float(m[k2])) <= 1e-5, what
        assert (f["llr_flank"] == "") == (m["llr_flank"] == "")
        if f["llr_flank"]:
            assert abs(float(f["llr_flank"]) - float(m["llr_flank"])) <= 1e-5, what
        assert f["bshift"] == m["bshift"] and f["clipped"] == m["clipped"], what
        assert int(f["footprint_end"]) - int(f["footprint_start"]) == int(m["footprint_end"]) - int(
            m["footprint_start"]
        )
        assert SIZE - int(f["footprint_end"]) == int(m["footprint_start"]), what


# ---- N, statuses, sharing, output -----------------------------------------------------------------------------


def test_n_bases_in_a_window_contribute_nothing_and_n_alleles_are_skipped(model, genome, tmp_path):
    near = GAP[1] + 20  # 0-based, 20 bases after the gap: the gap is in the window's left flank
    before = GAP[0] - 31
    rows = [
        (before + 1, base(genome, before + 1, 1, "gap"), other(base(genome, before + 1, 1, "gap")), "before it"),
        (GAP[0] + 5, "N", "A", "REF N"),
        (near + 1, base(genome, near + 1, 1, "gap"), other(base(genome, near + 1, 1, "gap")), "after the gap"),
    ]
    table, summary = run(model, genome, tmp_path, rows, chrom="gap")
    assert [t["status"] for t in table] == ["scored", "non_acgt", "scored"]
    for t in (table[0], table[2]):
        lo, hi = int(t["window_start"]), int(t["window_end"])
        assert lo < GAP[0] and GAP[1] < hi  # Ns inside the window
        expected = brute_force(model, genome, "gap", t)
        assert float(t["llr_fwd"]) == pytest.approx(expected["+"][0], abs=2e-5)
        assert float(t["llr_rev"]) == pytest.approx(expected["-"][0], abs=2e-5)


def test_every_allele_gets_a_status_and_skips_are_counted_by_reason(scored):
    _, rows, table, summary = scored
    status = {(int(t["pos"]), t["alt"]): t["status"] for t in table}

    def of(what: str) -> str:
        pos, _, alt, _ = row_of(rows, what)
        return status[(pos, alt)]

    assert of("SNV at the contig's first") == of("insertion before the first") == "scored_rev"
    assert of("SNV at the contig's last") == "scored_fwd"
    assert status[(5_001, "<DEL>")] == "symbolic" and status[(5_001, "*")] == "star"
    assert of("REF mismatch") == "ref_mismatch" and of("no ALT") == "no_alt" and of("ALT N") == "non_acgt"
    assert of("insertion longer") == of("REF longer") == "too_long"
    assert summary.records == len(rows) and summary.alleles == len(table) == 19
    skipped = {"symbolic": 1, "star": 1, "ref_mismatch": 1, "too_long": 2, "no_alt": 1, "non_acgt": 1}
    assert dict(summary.skipped) == skipped
    # one strand: the two alleles at the first base and the SNV at the last; clipped: those and the poly-A deletion
    assert summary.one_strand == 3 and summary.clipped == 4


def test_pos_0_is_skipped_with_a_warning_naming_the_record_and_the_rest_is_scored(model, genome, tmp_path):
    rows = [(0, "A", "C"), (5_001, base(genome, 5_001), other(base(genome, 5_001)))]
    warnings = []
    vcf = write_vcf(tmp_path / "in.vcf", rows)
    summary = score_vcf(
        InferenceEngine(model), genome, vcf, tmp_path / "o.vcf.gz", VariantScoringConfig(WINDOW), warn=warnings.append
    )
    assert warnings == [f"{vcf}: record 1 (fwd:0): POS 0 is not a position (VCF counts from 1); skipped"]
    assert [t["status"] for t in tsv(tmp_path / "o.tsv")] == ["bad_pos", "scored"] and summary.scored == 1
    records = list(pysam.VariantFile(str(tmp_path / "o.vcf.gz")))
    assert records[0].info["HNET_STATUS"] == ("bad_pos",) and "HNET_LLR" not in records[0].info


def test_alleles_sharing_a_window_run_one_prefix_and_continue_from_its_state(model, genome, tmp_path):
    """Dense SNVs: a window's prefix runs once per strand, then REF and every distinct ALT continue from it."""
    grid = Grid(SIZE, LAYOUT.grid)
    start = grid.up(6_000) + LAYOUT.flank  # first footprint start of one grid cell (0-based)
    rows = []
    for p in range(start, start + LAYOUT.grid):
        ref = base(genome, p + 1)
        rows += [(p + 1, ref, ",".join(b for b in "ACGT" if b != ref))]
    rows.insert(1, (start + 1, base(genome, start + 1), other(base(genome, start + 1))))  # split record: no new ALT
    engine = InferenceEngine(model, batch_size=7)
    vcf = write_vcf(tmp_path / "d.vcf", rows)
    summary = score_vcf(engine, genome, vcf, tmp_path / "d.vcf.gz", VariantScoringConfig(WINDOW, "fwd"))
    alts = 3 * LAYOUT.grid
    assert summary.scored == alts + 1 and summary.jobs == 1
    f, s = LAYOUT.flank, LAYOUT.grid
    assert engine.timing.bases == f + (1 + alts) * (f + s)  # prefix once; REF + distinct ALT continuations
    table = tsv(tmp_path / "d.tsv")
    assert table[3]["llr"] == next(t["llr"] for t in table[:3] if t["alt"] == table[3]["alt"])
    both = InferenceEngine(model, batch_size=32)
    score_vcf(both, genome, vcf, tmp_path / "b.vcf.gz", VariantScoringConfig(WINDOW, "both"))
    assert both.timing.bases / LAYOUT.snv_window / (alts + 1) < 1.5  # model windows per variant, both strands


def test_output_vcf_keeps_every_record_and_header_line_and_declares_the_fields(model, scored):
    tmp, rows, table, _ = scored
    out = pysam.VariantFile(str(tmp / "out.vcf.gz"))
    header = str(out.header)
    for line in HEADER[:-1]:
        assert line in header
    for key in ("HNET_LLR", "HNET_LLR_FWD", "HNET_LLR_REV", "HNET_LLR_FLANK"):
        assert out.header.info[key].number == "A" and out.header.info[key].type == "Float"
    assert out.header.info["HNET_STATUS"].type == "String" and out.header.info["HNET_CLIPPED"].number == "A"
    assert ("HNET_BSHIFT" in out.header.info) == (model.config.num_stages > 0)
    assert 'Sign="HNET_LLR < 0: ALT less likely than REF' in header and f'Grid="{LAYOUT.grid}"' in header
    records = list(out)
    assert [(r.pos, r.id, r.info["DP"]) for r in records] == [(p, f"v{i}", i) for i, (p, *_) in enumerate(rows)]
    multi = next(r for r in records if r.pos == 5_001)
    assert multi.info["HNET_STATUS"] == ("scored", "scored", "symbolic", "star")
    assert multi.info["HNET_LLR"][2:] == (None, None) and multi.info["HNET_CLIPPED"][:2] == (0, 0)
    first = records[0]
    assert first.info["HNET_STATUS"] == ("scored_rev",) and first.info["HNET_LLR_FWD"] == (None,)
    assert first.info["HNET_CLIPPED"] == (1,)
    mismatch = next(r for r in records if r.pos == 15_001)
    assert list(mismatch.filter) == ["REF_MISMATCH"] and "HNET_LLR" not in mismatch.info
    assert [r.pos for r in out.fetch("fwd", 6_900, 11_500)] == [7_001, 9_001, 11_001]  # tabix index
    by_key = {(int(t["pos"]), t["alt"]): t for t in table}
    for r in records:
        for alt, value in zip(r.alts or (), r.info.get("HNET_LLR", (None,) * len(r.alts or ()))):
            if value is not None:
                assert value == pytest.approx(float(by_key[(r.pos, alt)]["llr"]), rel=1e-5, abs=2e-6)


def test_rescoring_a_scored_vcf_replaces_our_fields(model, genome, scored, tmp_path):
    tmp, _, table, _ = scored
    engine = InferenceEngine(model, batch_size=5)
    summary = score_vcf(
        engine, genome, tmp / "out.vcf.gz", tmp_path / "again.vcf.gz", VariantScoringConfig(WINDOW, "fwd")
    )
    assert set(summary.replaced_fields) >= {"HNET_LLR", "HNET_LLR_REV", "HNET_STATUS"}
    out = pysam.VariantFile(str(tmp_path / "again.vcf.gz"))
    header = str(out.header)
    assert header.count("ID=HNET_LLR,") == 1 and "HNET_LLR_REV" not in header
    assert header.count("##hnet_genomics_score_variants") == 1
    again = tsv(tmp_path / "again.tsv")
    assert [t["llr_fwd"] == "" for t in again] == [t["llr_fwd"] == "" for t in table]
    for t, u in zip(again, table):
        if t["llr_fwd"]:
            assert float(t["llr_fwd"]) == pytest.approx(float(u["llr_fwd"]), abs=2e-5)
    assert all("HNET_LLR_REV" not in r.info for r in out)


@pytest.mark.parametrize(
    "ref,alt,kind,skip",
    [
        ("A", "C", "SNV", None),
        ("AC", "GT", "MNV", None),
        ("A", "AT", "INS", None),
        ("AT", "A", "DEL", None),
        ("ATG", "GC", "COMPLEX", None),
        ("A", "<DUP>", "", "symbolic"),
        ("A", "A[1:5[", "", "symbolic"),
        ("A", "*", "", "star"),
        ("A", None, "", "no_alt"),
        ("A", "R", "", "non_acgt"),
        ("A", "N", "", "non_acgt"),
        ("N", "A", "", "non_acgt"),
        ("A", "A" * 51, "", "too_long"),
        ("A", "a", "", "no_change"),
        ("CAT", "CT", "DEL", None),
    ],
)
def test_alleles_are_classified_by_kind_or_skip_reason(ref, alt, kind, skip):
    assert classify_allele(ref, alt, 50) == (kind, skip)


def test_shared_bases_are_trimmed_from_both_ends():
    assert trim_shared("CAT", "CT") == ("A", "")
    assert trim_shared("A", "ATTA") == ("", "TTA")


def test_boundary_shift_counts_inserted_and_deleted_boundaries():
    b_ref = np.array([1, 0, 0, 1, 0, 1, 0, 0], bool)  # left flank 2, REF 3 bases (one boundary), right flank 3
    b_alt = np.array([1, 0, 0, 1, 1, 0], bool)  # ALT 1 base, right flank boundaries shifted by one
    assert boundary_shift(b_ref, b_alt, 2, 3, 1, 10) == 2
    assert boundary_shift(b_ref, b_alt, 2, 3, 1, 0) == 1


def test_bcf_and_bgzipped_vcf_give_the_same_scores_as_plain_vcf(model, genome, tmp_path):
    rows = [row_of(example_records(genome), w) for w in ("MNV", "insertion of", "deletion of GA")]
    vcf = write_vcf(tmp_path / "a.vcf", sorted(rows))
    with pysam.VariantFile(str(vcf)) as src:
        for path, mode in ((tmp_path / "a.bcf", "wb"), (tmp_path / "a.in.vcf.gz", "wz")):
            with pysam.VariantFile(str(path), mode, header=src.header) as dst:
                for rec in pysam.VariantFile(str(vcf)):
                    dst.write(rec)
    cfg = VariantScoringConfig(window=WINDOW, strand="fwd")
    outs = []
    for i, path in enumerate((vcf, tmp_path / "a.bcf", tmp_path / "a.in.vcf.gz")):
        score_vcf(InferenceEngine(model), genome, path, tmp_path / f"o{i}.vcf.gz", cfg)
        outs.append([t["llr"] for t in tsv(tmp_path / f"o{i}.tsv")])
    assert outs[0] == outs[1] == outs[2] and len(outs[0]) == 3


# ---- through the command line -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "hnet"
    torch.manual_seed(0)
    build_model(load_config("dna/hnet_1stage_tiny")).save_pretrained(path)
    return path


def cli(saved: Path, vcf: Path, out: Path, *extra: str, fasta) -> int:
    """The exit status, also when the option parser itself stops with its one-line error."""
    argv = ["score-variants", "--model", str(saved), "--fasta", str(fasta), "--vcf", str(vcf), "--out", str(out)]
    try:
        return main([*argv, "--window", str(WINDOW), "--quiet", *extra])
    except SystemExit as e:
        return e.code


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("hnet-genomics: error: "), err
    return err


def test_cli_scores_a_vcf_and_names_the_model_in_the_header(saved, genome, fasta, tmp_path, capsys):
    import hashlib

    vcf = write_vcf(tmp_path / "in.vcf", [row_of(example_records(genome), w) for w in ("MNV", "insertion")])
    argv = ["score-variants", "--model", str(saved), "--fasta", str(fasta), "--window", str(WINDOW)]
    assert main([*argv, "--vcf", str(vcf), "--out", str(tmp_path / "o.vcf.gz"), "--strand", "fwd"]) == 0
    out = capsys.readouterr().out
    assert "2 records, 2 ALT alleles: 2 scored" in out and "variants/s" in out and "windows per variant" in out
    assert "did not record how its training read sequence" in out  # saved without encoding.json
    assert all((tmp_path / f).is_file() for f in ("o.vcf.gz", "o.vcf.gz.tbi", "o.tsv"))
    header = str(pysam.VariantFile(str(tmp_path / "o.vcf.gz")).header)
    sha = hashlib.sha256((saved / "model.safetensors").read_bytes()).hexdigest()
    assert f'WeightsSHA256="{sha}"' in header and f'Model="{saved}"' in header and 'Version="' in header
    assert "HNET_LLR_REV" not in header
    assert main([*argv, "--vcf", str(tmp_path / "o.vcf.gz"), "--out", str(tmp_path / "p.vcf.gz")]) == 0
    assert "was scored before: replaced its HNET_LLR" in capsys.readouterr().out


def test_ref_mismatch_with_strict_is_an_error_naming_the_record_and_writes_nothing(
    saved, genome, fasta, tmp_path, capsys
):
    rows = example_records(genome)
    vcf = write_vcf(tmp_path / "in.vcf", [row_of(rows, "complex"), row_of(rows, "REF mismatch")])
    assert cli(saved, vcf, tmp_path / "o.vcf.gz", "--strict", fasta=fasta) == 2
    err = one_line_error(capsys)
    assert "record 2 (fwd:15001): REF" in err and "does not match" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.vcf"]


@pytest.fixture(scope="module")
def numbered_genome(tmp_path_factory):
    """The first 5 kb of the HLA record, named '6' as Ensembl names chromosome 6."""
    path = tmp_path_factory.mktemp("g") / "six.fa"
    seq = Genome(demo.HUMAN_FASTA).fetch(HLA, 0, 5000).decode()
    path.write_text(">6\n" + "\n".join(seq[i : i + 60] for i in range(0, len(seq), 60)) + "\n")
    return path


def test_unknown_contig_with_chr_prefix_says_how_to_rename(saved, numbered_genome, tmp_path, capsys):
    seq = Genome(numbered_genome).fetch("6", 999, 1000).decode()
    header = ["##fileformat=VCFv4.2", "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    vcf = write_vcf(tmp_path / "in.vcf", [(1000, seq, other(seq), "")], chrom="chr6", header=header)
    assert cli(saved, vcf, tmp_path / "o.vcf.gz", fasta=numbered_genome) == 2
    err = one_line_error(capsys)
    assert "contig 'chr6' is not in" in err and "the FASTA calls it '6'" in err and "--rename-chrs" in err


def test_unknown_contig_without_a_near_name_lists_the_fasta_records(saved, fasta, tmp_path, capsys):
    header = ["##fileformat=VCFv4.2", "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    vcf = write_vcf(tmp_path / "in.vcf", [(5, "A", "C", "")], chrom="chrUn_gl000220", header=header)
    assert cli(saved, vcf, tmp_path / "o.vcf.gz", fasta=fasta) == 2
    assert "FASTA records: fwd, rev, gap" in one_line_error(capsys)


@pytest.mark.parametrize(
    "case,message",
    [
        ("unsorted", "record 2 (fwd:100) comes after fwd:200: the VCF is not sorted"),
        ("length", "declares contig 'fwd' with length 999 but it has 30,003 bases"),
        ("not_vcf", "not a readable VCF, VCF.gz or BCF file"),
        ("malformed", "malformed record after fwd:100"),
        ("missing", "no such file"),
        ("out", "must end in .vcf.gz"),
        ("max_len", "--max-len: expected a positive integer"),
        ("grid_even", "--grid must be an odd number"),
        ("grid_coarse", "--grid 101 is too coarse for --window 200"),
    ],
)
def test_bad_input_is_one_line_naming_the_problem(saved, genome, fasta, tmp_path, capsys, case, message):
    rows = [(200, base(genome, 200), "A", ""), (100, base(genome, 100), "A", "")]
    vcf = tmp_path / "in.vcf"
    extra, out = [], tmp_path / "o.vcf.gz"
    write_vcf(vcf, rows[1:])
    if case == "unsorted":
        write_vcf(vcf, rows)
    elif case == "length":
        write_vcf(vcf, rows[1:], header=[h.replace(f"length={SIZE}", "length=999") for h in HEADER])
    elif case == "not_vcf":
        vcf.write_text(">x\nACGT\n")
    elif case == "malformed":
        vcf.write_text(vcf.read_text() + "fwd\tabc\t.\tA\tT\t.\t.\t.\n")
    elif case == "missing":
        vcf.unlink()
    elif case == "out":
        out = tmp_path / "o.vcf"
    elif case == "max_len":
        extra = ["--max-len", "0"]
    elif case == "grid_even":
        extra = ["--grid", "4"]
    elif case == "grid_coarse":
        extra = ["--grid", "101"]
    assert cli(saved, vcf, out, *extra, fasta=fasta) == 2
    assert message in one_line_error(capsys)
    assert not list(tmp_path.glob("o*"))


def test_plain_gzip_vcf_is_refused_with_the_bgzip_command(saved, genome, fasta, tmp_path, capsys):
    vcf = write_vcf(tmp_path / "in.vcf", [row_of(example_records(genome), "MNV")])
    gz = tmp_path / "in.vcf.gz"
    gz.write_bytes(gzip.compress(vcf.read_bytes()))
    assert cli(saved, gz, tmp_path / "o.vcf.gz", fasta=fasta) == 2
    assert "gzip-compressed but not bgzip" in one_line_error(capsys)


def test_undeclared_info_and_filter_and_samples_pass_through(model, genome, tmp_path):
    """A sloppy VCF (INFO and FILTER used without declaration, genotypes, no contig lines) is kept as it was."""
    ref = base(genome, 5_001)
    lines = [
        "##fileformat=VCFv4.2",
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        '##INFO=<ID=HNET_LLR,Number=1,Type=Integer,Description="someone else\'s field of that name">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\ts1\ts2",
        f"fwd\t5001\trs1\t{ref}\t{other(ref)}\t30\tLowQual\tXX=1;HNET_LLR=7\tGT\t0/1\t1/1",
    ]
    vcf = tmp_path / "sloppy.vcf"
    vcf.write_text("\n".join(lines) + "\n")
    summary = score_vcf(InferenceEngine(model), genome, vcf, tmp_path / "o.vcf.gz", VariantScoringConfig(WINDOW))
    assert summary.scored == 1 and summary.replaced_fields == ["HNET_LLR"]
    out = pysam.VariantFile(str(tmp_path / "o.vcf.gz"))
    rec = next(iter(out))
    assert list(rec.filter) == ["LowQual"] and rec.info["XX"] == "1" and rec.info["HNET_STATUS"] == ("scored",)
    assert isinstance(rec.info["HNET_LLR"][0], float) and out.header.info["HNET_LLR"].type == "Float"
    assert [s["GT"] for s in rec.samples.values()] == [(0, 1), (1, 1)] and list(out.header.contigs) == ["fwd"]
