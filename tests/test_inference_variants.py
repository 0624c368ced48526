"""`score-variants`: scores equal brute-force forward passes, every record kept, bad input is one line."""

from __future__ import annotations

import gzip
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
from hnet_genomics.inference.variants import VariantScoringConfig, boundary_shift, flank_lengths

CHROM = "BA000025.2"
LENGTH = 2_229_817
WINDOW = 200
HEADER = [
    "##fileformat=VCFv4.2",
    f"##contig=<ID={CHROM},length={LENGTH}>",
    '##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">',
    "##source=test",
    "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
]


@pytest.fixture(scope="module")
def genome() -> Genome:
    return Genome(demo.HUMAN_FASTA)


@pytest.fixture(scope="module", params=["dna/hnet_1stage_tiny", "dna/hnet_2stage_tiny"])
def model(request):
    torch.manual_seed(0)
    return build_model(load_config(request.param)).eval()


def ref_at(genome: Genome, pos: int, n: int = 1) -> str:
    return genome.fetch(CHROM, pos - 1, pos - 1 + n).decode()


def other(base: str) -> str:
    return next(b for b in "ACGT" if b != base)


def example_records(genome: Genome) -> list[tuple[int, str, str, str]]:
    """(POS, REF, ALT, what it exercises) on real HLA sequence: every allele kind, multi-allelic, skips."""
    r = lambda pos, n=1: ref_at(genome, pos, n)  # noqa: E731
    mnv = "".join(other(b) for b in r(20_000, 3))
    return [
        (1, r(1), other(r(1)), "SNV at the contig's first base: contig_edge"),
        (10_000, r(10_000), other(r(10_000)), "SNV"),
        (20_000, r(20_000, 3), mnv, "MNV"),
        (30_000, r(30_000), r(30_000) + "GATTACA", "insertion"),
        (40_000, r(40_000, 6), r(40_000), "deletion"),
        (50_000, r(50_000), f"{other(r(50_000))},{r(50_000)}TT,<DEL>,*", "multi-allelic with symbolic and star"),
        (60_000, r(60_000, 3), other(r(60_000)) + other(r(60_002)), "complex"),
        (70_000, other(r(70_000)), r(70_000), "REF mismatch"),
        (80_000, r(80_000), r(80_000) + "A" * 60, "insertion longer than --max-len"),
        (90_000, r(90_000), ".", "no ALT"),
    ]


def write_vcf(path: Path, rows: list[tuple[int, str, str, str]], chrom: str = CHROM, header=HEADER) -> Path:
    lines = header + [f"{chrom}\t{p}\tv{p}\t{ref}\t{alt}\t50\tPASS\tDP={i}" for i, (p, ref, alt, _) in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def window_log_likelihood(model, seq: bytes) -> float:
    """ln P(window) by one forward pass over the window alone: sum of ln p(x_t | x_<t), t >= 1."""
    ids = torch.tensor(list(seq))[None]
    with torch.inference_mode():
        logp = torch.log_softmax(model(ids).logits[0, :-1].double(), -1)
    return float(logp.gather(-1, ids[0, 1:, None]).sum())


def brute_force(model, genome: Genome, pos: int, ref: str, alt: str, window: int) -> tuple[float, float]:
    """(forward, reverse) LLR from full forward passes of the two windows, each strand on its own."""
    pos0 = pos - 1
    left, right = flank_lengths(pos0, len(ref), window, LENGTH)
    lf = genome.fetch(CHROM, pos0 - left, pos0)
    rf = genome.fetch(CHROM, pos0 + len(ref), pos0 + len(ref) + right)
    r, a = lf + ref.encode() + rf, lf + alt.encode() + rf
    fwd = window_log_likelihood(model, a) - window_log_likelihood(model, r)
    rev = window_log_likelihood(model, reverse_complement(a)) - window_log_likelihood(model, reverse_complement(r))
    return fwd, rev


@pytest.fixture(scope="module")
def scored(model, genome, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("variants")
    rows = example_records(genome)
    vcf = write_vcf(tmp / "in.vcf", rows)
    engine = InferenceEngine(model, batch_size=5)  # batches mix windows of different lengths
    summary = score_vcf(engine, genome, vcf, tmp / "out.vcf.gz", VariantScoringConfig(window=WINDOW), "tiny")
    return tmp, rows, summary


def tsv(path: Path) -> list[dict[str, str]]:
    lines = path.read_text().splitlines()
    keys = lines[0].split("\t")
    return [dict(zip(keys, ln.split("\t"))) for ln in lines[1:]]


def test_score_equals_brute_force_difference_of_full_forward_passes_for_every_allele_kind(model, genome, scored):
    tmp, rows, summary = scored
    table = [t for t in tsv(tmp / "out.tsv") if t["status"] == "scored"]
    assert {t["kind"] for t in table} == {"SNV", "MNV", "INS", "DEL", "COMPLEX"}
    assert summary.scored == len(table) == 7
    for t in table:
        fwd, rev = brute_force(model, genome, int(t["pos"]), t["ref"], t["alt"], WINDOW)
        assert float(t["llr_fwd"]) == pytest.approx(fwd, rel=1e-5, abs=2e-4)
        assert float(t["llr_rev"]) == pytest.approx(rev, rel=1e-5, abs=2e-4)


def test_strand_average_is_the_mean_of_forward_and_explicit_reverse_complement(scored):
    tmp, _, _ = scored
    for t in tsv(tmp / "out.tsv"):
        if t["status"] == "scored":
            assert float(t["llr"]) == pytest.approx((float(t["llr_fwd"]) + float(t["llr_rev"])) / 2, rel=1e-5, abs=1e-5)


def test_every_allele_gets_a_status_and_skips_are_counted_by_reason(scored):
    tmp, rows, summary = scored
    status = {(int(t["pos"]), t["alt"]): t["status"] for t in tsv(tmp / "out.tsv")}
    p50 = next(r for r in rows if r[0] == 50_000)
    assert status[(1, rows[0][2])] == "contig_edge"
    assert status[(50_000, "<DEL>")] == "symbolic" and status[(50_000, "*")] == "star"
    assert status[(50_000, p50[2].split(",")[1])] == "scored"
    assert status[(70_000, rows[7][2])] == "ref_mismatch"
    assert status[(80_000, rows[8][2])] == "too_long"
    assert status[(90_000, ".")] == "no_alt"
    assert summary.records == len(rows) and summary.alleles == len(status) == 13
    assert dict(summary.skipped) == {
        "contig_edge": 1,
        "symbolic": 1,
        "star": 1,
        "ref_mismatch": 1,
        "too_long": 1,
        "no_alt": 1,
    }
    assert summary.ref_mismatch_records == 1


def test_output_vcf_keeps_every_record_and_header_line_and_pysam_reads_it_back(model, scored):
    tmp, rows, _ = scored
    out = pysam.VariantFile(str(tmp / "out.vcf.gz"))
    header = str(out.header)
    for line in HEADER[:-1]:
        assert line in header
    for key in ("HNET_LLR", "HNET_LLR_FWD", "HNET_LLR_REV"):
        assert out.header.info[key].number == "A" and out.header.info[key].type == "Float"
    assert ("HNET_BSHIFT" in out.header.info) == (model.config.num_stages > 0)
    assert "REF_MISMATCH" in out.header.filters
    records = list(out)
    assert [(r.pos, r.id, r.info["DP"]) for r in records] == [(p, f"v{p}", i) for i, (p, *_) in enumerate(rows)]
    multi = next(r for r in records if r.pos == 50_000)
    assert len(multi.info["HNET_LLR"]) == 4 and multi.info["HNET_LLR"][0] is not None
    assert multi.info["HNET_LLR"][2:] == (None, None)
    mismatch = next(r for r in records if r.pos == 70_000)
    assert list(mismatch.filter) == ["REF_MISMATCH"] and "HNET_LLR" not in mismatch.info
    assert [r.pos for r in out.fetch(CHROM, 19_000, 41_000)] == [20_000, 30_000, 40_000]  # tabix index
    table = {(int(t["pos"]), t["alt"]): t for t in tsv(tmp / "out.tsv")}
    for r in records:
        for alt, value in zip(r.alts or (), r.info.get("HNET_LLR", (None,) * len(r.alts or ()))):
            if value is not None:
                assert value == pytest.approx(float(table[(r.pos, alt)]["llr"]), rel=1e-5)


def test_bshift_counts_boundaries_the_allele_moves_from_the_model_masks(model, genome, scored):
    if model.config.num_stages == 0:
        pytest.skip("isotropic")
    tmp, _, _ = scored
    for t in tsv(tmp / "out.tsv"):
        if t["status"] != "scored":
            continue
        pos0, ref, alt = int(t["pos"]) - 1, t["ref"], t["alt"]
        left, right = flank_lengths(pos0, len(ref), WINDOW, LENGTH)
        lf, rf = genome.fetch(CHROM, pos0 - left, pos0), genome.fetch(CHROM, pos0 + len(ref), pos0 + len(ref) + right)
        masks = []
        for seq in (lf + ref.encode() + rf, lf + alt.encode() + rf):
            with torch.inference_mode():
                masks.append(model(torch.tensor(list(seq))[None]).boundary_masks[0][0].numpy())
        b_ref, b_alt = masks
        assert np.array_equal(b_ref[:left], b_alt[:left])  # a causal router cannot move earlier boundaries
        k = 10
        if len(ref) == len(alt):  # same length: positionwise differences over allele +- k
            expected = int((b_ref[left - k : left + len(ref) + k] != b_alt[left - k : left + len(ref) + k]).sum())
            assert int(t["bshift"]) == expected
        assert int(t["bshift"]) == boundary_shift(b_ref, b_alt, left, len(ref), len(alt), k)


def test_boundary_shift_counts_inserted_and_deleted_boundaries():
    b_ref = np.array([1, 0, 0, 1, 0, 1, 0, 0], bool)  # left flank 2, REF 3 bases (one boundary), right flank 3
    b_alt = np.array([1, 0, 0, 1, 1, 0], bool)  # ALT 1 base, right flank boundaries shifted by one
    # allele: shared first base equal (0 vs 0); deleted REF bases hold one boundary (index 3);
    # right flank ref [1,0,0] vs alt [1,1,0]: one differs
    assert boundary_shift(b_ref, b_alt, 2, 3, 1, 10) == 2
    assert boundary_shift(b_ref, b_alt, 2, 3, 1, 0) == 1


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
        ("A", "R", "", "non_acgtn"),
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


def test_multi_allelic_reference_window_runs_once(model, genome, tmp_path):
    """Reuse: a record's ALT alleles share its REF window, as do split records at one position."""
    pos = 10_000
    ref = ref_at(genome, pos)
    alts = [b for b in "ACGT" if b != ref]
    rows = [(pos, ref, ",".join(alts), "")] + [(pos, ref, a, "") for a in alts]
    vcf = write_vcf(tmp_path / "m.vcf", rows)
    summary = score_vcf(
        InferenceEngine(model), genome, vcf, tmp_path / "m.vcf.gz", VariantScoringConfig(window=WINDOW, strand="fwd")
    )
    assert summary.scored == 6 and summary.windows_run == 1 + 3  # one REF window, three distinct ALT windows
    table = tsv(tmp_path / "m.tsv")
    by_alt = {}
    for t in table:
        by_alt.setdefault(t["alt"], set()).add(t["llr"])
    assert all(len(v) == 1 for v in by_alt.values())  # split and multi-allelic records score alike


def test_bcf_and_bgzipped_vcf_give_the_same_scores_as_plain_vcf(model, genome, tmp_path):
    rows = example_records(genome)[1:5]
    vcf = write_vcf(tmp_path / "a.vcf", rows)
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
    assert outs[0] == outs[1] == outs[2] and len(outs[0]) == 4


# ---- bad input, through the command line ------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "hnet"
    torch.manual_seed(0)
    build_model(load_config("dna/hnet_1stage_tiny")).save_pretrained(path)
    return path


def cli(saved: Path, vcf: Path, out: Path, *extra: str, fasta=demo.HUMAN_FASTA) -> int:
    """The exit status, also when the option parser itself stops with its one-line error."""
    try:
        return main(
            [
                "score-variants",
                "--model",
                str(saved),
                "--fasta",
                str(fasta),
                "--vcf",
                str(vcf),
                "--out",
                str(out),
                "--window",
                str(WINDOW),
                "--quiet",
                *extra,
            ]
        )
    except SystemExit as e:
        return e.code


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("hnet-genomics: error: "), err
    return err


def test_cli_scores_a_vcf_and_writes_vcf_index_and_tsv(saved, genome, tmp_path, capsys):
    vcf = write_vcf(tmp_path / "in.vcf", example_records(genome)[1:3])
    assert (
        main(
            [
                "score-variants",
                "--model",
                str(saved),
                "--fasta",
                str(demo.HUMAN_FASTA),
                "--vcf",
                str(vcf),
                "--out",
                str(tmp_path / "o.vcf.gz"),
                "--window",
                str(WINDOW),
                "--strand",
                "fwd",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "2 records, 2 ALT alleles: 2 scored" in out and "variants/s" in out
    assert all((tmp_path / f).is_file() for f in ("o.vcf.gz", "o.vcf.gz.tbi", "o.tsv"))
    assert "HNET_LLR_REV" not in str(pysam.VariantFile(str(tmp_path / "o.vcf.gz")).header)


def test_ref_mismatch_with_strict_is_an_error_naming_the_record_and_writes_nothing(saved, genome, tmp_path, capsys):
    vcf = write_vcf(tmp_path / "in.vcf", example_records(genome)[6:8])
    assert cli(saved, vcf, tmp_path / "o.vcf.gz", "--strict") == 2
    err = one_line_error(capsys)
    assert "record 2 (BA000025.2:70000): REF" in err and "does not match" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.vcf"]


@pytest.fixture(scope="module")
def numbered_genome(tmp_path_factory):
    """The first 5 kb of the HLA record, named '6' as Ensembl names chromosome 6."""
    path = tmp_path_factory.mktemp("g") / "six.fa"
    seq = Genome(demo.HUMAN_FASTA).fetch(CHROM, 0, 5000).decode()
    path.write_text(">6\n" + "\n".join(seq[i : i + 60] for i in range(0, len(seq), 60)) + "\n")
    return path


def test_unknown_contig_with_chr_prefix_says_how_to_rename(saved, numbered_genome, tmp_path, capsys):
    seq = Genome(numbered_genome).fetch("6", 999, 1000).decode()
    header = ["##fileformat=VCFv4.2", "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    vcf = write_vcf(tmp_path / "in.vcf", [(1000, seq, other(seq), "")], chrom="chr6", header=header)
    assert cli(saved, vcf, tmp_path / "o.vcf.gz", fasta=numbered_genome) == 2
    err = one_line_error(capsys)
    assert "contig 'chr6' is not in" in err and "the FASTA calls it '6'" in err and "--rename-chrs" in err


def test_unknown_contig_without_a_near_name_lists_the_fasta_records(saved, tmp_path, capsys):
    header = ["##fileformat=VCFv4.2", "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    vcf = write_vcf(tmp_path / "in.vcf", [(5, "A", "C", "")], chrom="chrUn_gl000220", header=header)
    assert cli(saved, vcf, tmp_path / "o.vcf.gz") == 2
    assert "FASTA records: BA000025.2" in one_line_error(capsys)


@pytest.mark.parametrize(
    "case,message",
    [
        ("unsorted", "record 2 (BA000025.2:100) comes after BA000025.2:200: the VCF is not sorted"),
        ("length", "declares contig 'BA000025.2' with length 999 but it has 2,229,817 bases"),
        ("not_vcf", "not a readable VCF, VCF.gz or BCF file"),
        ("malformed", "malformed record after BA000025.2:100"),
        ("missing", "no such file"),
        ("out", "must end in .vcf.gz"),
        ("max_len", "--max-len: expected a positive integer"),
    ],
)
def test_bad_input_is_one_line_naming_the_problem(saved, genome, tmp_path, capsys, case, message):
    rows = [(200, ref_at(genome, 200), "A", ""), (100, ref_at(genome, 100), "A", "")]
    vcf = tmp_path / "in.vcf"
    extra, out = [], tmp_path / "o.vcf.gz"
    if case == "unsorted":
        write_vcf(vcf, rows)
    elif case == "length":
        write_vcf(vcf, rows[1:], header=[h.replace(f"length={LENGTH}", "length=999") for h in HEADER])
    elif case == "not_vcf":
        vcf.write_text(">x\nACGT\n")
    elif case == "malformed":
        write_vcf(vcf, rows[1:])
        vcf.write_text(vcf.read_text() + f"{CHROM}\tabc\t.\tA\tT\t.\t.\t.\n")
    elif case == "out":
        write_vcf(vcf, rows[1:])
        out = tmp_path / "o.vcf"
    elif case == "max_len":
        write_vcf(vcf, rows[1:])
        extra = ["--max-len", "0"]
    assert cli(saved, vcf, out, *extra) == 2
    assert message in one_line_error(capsys)
    assert not list(tmp_path.glob("o*"))


def test_plain_gzip_vcf_is_refused_with_the_bgzip_command(saved, genome, tmp_path, capsys):
    vcf = write_vcf(tmp_path / "in.vcf", example_records(genome)[1:2])
    gz = tmp_path / "in.vcf.gz"
    gz.write_bytes(gzip.compress(vcf.read_bytes()))
    assert cli(saved, gz, tmp_path / "o.vcf.gz") == 2
    assert "gzip-compressed but not bgzip" in one_line_error(capsys)
