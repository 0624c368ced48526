"""`ism`: every change of a region scored exactly as score-variants scores that SNV, on the state-reuse engine;
matrix, table, bigWig tracks and picture agree with each other."""

from __future__ import annotations

import numpy as np
import pybigtools
import pytest
import torch

from hnet_genomics import build_model, load_config
from hnet_genomics.cli import main
from hnet_genomics.data import demo
from hnet_genomics.data.encoding import reverse_complement
from hnet_genomics.data.genome import Genome
from hnet_genomics.data.intervals import Interval
from hnet_genomics.errors import ConfigError
from hnet_genomics.export.ism import write_ism
from hnet_genomics.export.variant_scores import score_vcf
from hnet_genomics.inference.engine import InferenceEngine
from hnet_genomics.inference.ism import BASES, parse_region, saturation_mutagenesis
from hnet_genomics.inference.variants import Footprint, VariantScoringConfig, allele_window

HLA = "BA000025.2"
WINDOW = 200
REGION = Interval(HLA, 150_000, 150_012)


@pytest.fixture(scope="module")
def genome() -> Genome:
    return Genome(demo.HUMAN_FASTA)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(load_config("dna/hnet_1stage_tiny")).eval()


@pytest.fixture(scope="module")
def ism(model, genome):
    engine = InferenceEngine(model, batch_size=8)
    return saturation_mutagenesis(engine, genome, REGION, VariantScoringConfig(WINDOW)), engine


def window_llr(model, seq: bytes, alt: bytes) -> float:
    """ln P(alt) - ln P(seq) from one forward pass over each whole sequence (they differ at one base)."""
    d = next(i for i in range(len(seq)) if seq[i] != alt[i])
    total = 0.0
    for s, sign in ((alt, 1), (seq, -1)):
        ids = torch.tensor(list(s))[None]
        with torch.inference_mode():
            lp = torch.log_softmax(model(ids).logits[0, :-1].double(), -1).gather(-1, ids[0, 1:, None])[:, 0]
        total += sign * float(lp[d - 1 :].sum())
    return total


def test_every_change_equals_full_forward_passes_over_its_window_on_both_strands(model, genome, ism):
    result, engine = ism
    assert result.llr.shape == (4, REGION.length) and result.ref == genome.fetch(HLA, REGION.start, REGION.end).upper()
    layout = VariantScoringConfig(WINDOW).layout()
    for i in (0, 5, 11):
        ref = result.ref[i]
        assert np.isnan(result.llr[BASES.index(ref), i])
        for b in BASES:
            if b == ref:
                continue
            fp = Footprint(REGION.start + i, bytes([ref]), bytes([b]))
            w = allele_window(HLA, genome.sizes[HLA], fp, layout)
            seq = genome.fetch(HLA, w.lo, w.hi).upper()
            alt = seq[: fp.start - w.lo] + fp.alt + seq[fp.end - w.lo :]
            expected = (
                window_llr(model, seq, alt) + window_llr(model, reverse_complement(seq), reverse_complement(alt))
            ) / 2
            assert result.llr[BASES.index(b), i] == pytest.approx(expected, abs=2e-5)
    assert (~np.isnan(result.llr)).sum() == 3 * REGION.length and set(result.strands) == {"+-"}
    assert engine.timing.bases / layout.snv_window / (3 * REGION.length) < 1.5  # model windows per change


def test_matrix_equals_score_variants_on_the_same_snvs(model, genome, ism, tmp_path):
    result, _ = ism
    seq = result.ref.decode()
    rows = [
        f"{HLA}\t{REGION.start + i + 1}\t.\t{b}\t{','.join(x for x in 'ACGT' if x != b)}\t.\t.\t."
        for i, b in enumerate(seq)
    ]
    vcf = tmp_path / "all.vcf"
    vcf.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n" + "\n".join(rows) + "\n")
    score_vcf(InferenceEngine(model, batch_size=3), genome, vcf, tmp_path / "all.vcf.gz", VariantScoringConfig(WINDOW))
    lines = [ln.split("\t") for ln in (tmp_path / "all.tsv").read_text().splitlines()[1:]]
    assert len(lines) == 3 * REGION.length
    for f in lines:
        i, b = int(f[1]) - 1 - REGION.start, BASES.index(f[4].encode())
        assert result.llr[b, i] == pytest.approx(float(f[7]), abs=2e-5)  # other batches: other rounding


def test_files_agree_with_the_matrix(ism, genome, tmp_path):
    result, _ = ism
    files = write_ism(result, tmp_path / "o" / "r", genome.sizes, logo_max=20)
    assert [f.name for f in files] == ["r.ism.npy", "r.ism.tsv", "r.ism.mean.bw", "r.ism.min.bw", "r.ism.png"]
    np.testing.assert_array_equal(np.load(files[0]), result.llr)
    table = [ln.split("\t") for ln in files[1].read_text().splitlines()]
    assert table[0] == ["chrom", "pos", "ref", "A", "C", "G", "T", "mean", "min", "strands"]
    for i, f in enumerate(table[1:]):
        assert int(f[1]) == REGION.start + i + 1 and f[2] == chr(result.ref[i]) and f[9] == "both"
        values = [float(x) if x else np.nan for x in f[3:9]]
        np.testing.assert_allclose(values[:4], result.llr[:, i], atol=1e-6)
        assert f[3 + BASES.index(result.ref[i])] == ""
        assert values[4] == pytest.approx(np.nanmean(result.llr[:, i]), abs=1e-6)
        assert values[5] == pytest.approx(np.nanmin(result.llr[:, i]), abs=1e-6)
    for kind, expected in (("mean", result.mean()), ("min", result.most_negative())):
        with pybigtools.open(str(tmp_path / "o" / f"r.ism.{kind}.bw")) as bw:
            values = np.array(bw.values(HLA, REGION.start, REGION.end, fillna=np.nan))
        np.testing.assert_allclose(values, expected, atol=1e-6)
    assert files[4].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and files[4].stat().st_size > 10_000
    short = write_ism(result, tmp_path / "s", genome.sizes, logo_max=REGION.length - 1)
    assert not any(f.suffix == ".png" for f in short)


def test_n_bases_get_no_values_and_the_contig_start_is_scored_on_the_reverse_strand(model, tmp_path):
    seq = Genome(demo.HUMAN_FASTA).fetch(HLA, 160_000, 160_600).upper()
    seq = seq[:300] + b"NN" + seq[302:]
    fasta = tmp_path / "n.fa"
    fasta.write_text(">c\n" + seq.decode() + "\n")
    genome = Genome(fasta)
    engine = InferenceEngine(model, batch_size=16)
    gap = saturation_mutagenesis(engine, genome, Interval("c", 298, 304), VariantScoringConfig(WINDOW))
    assert np.isnan(gap.llr[:, 2:4]).all() and (~np.isnan(gap.llr[:, [0, 1, 4, 5]])).sum() == 12
    start = saturation_mutagenesis(engine, genome, Interval("c", 0, 2), VariantScoringConfig(WINDOW))
    assert start.strands == ["-", "+-"] and (~np.isnan(start.llr)).sum() == 6


@pytest.mark.parametrize(
    "text,message",
    [
        ("BA000025.2:100-90", "must lie within BA000025.2:1-2,229,817 with start <= end"),
        ("BA000025.2:0-90", "must lie within"),
        ("BA000025.2:100", "expected chrom:start-end"),
        ("chr6:100-200", "contig 'chr6' is not in the FASTA (records: BA000025.2)"),
    ],
)
def test_bad_regions_are_refused_naming_the_option(genome, text, message):
    with pytest.raises(ConfigError, match=r"--region .*" + message.replace("(", r"\(").replace(")", r"\)")):
        parse_region(text, genome.sizes)
    assert parse_region("BA000025.2:1,001-1,010", genome.sizes) == Interval(HLA, 1_000, 1_010)


def test_cli_writes_every_file(tmp_path, capsys):
    torch.manual_seed(0)
    build_model(load_config("dna/hnet_1stage_tiny")).save_pretrained(tmp_path / "m")
    argv = ["ism", "--model", str(tmp_path / "m"), "--fasta", str(demo.HUMAN_FASTA), "--out", str(tmp_path / "o" / "x")]
    assert main([*argv, "--region", f"{HLA}:150001-150006", "--window", str(WINDOW), "--strand", "fwd"]) == 0
    out = capsys.readouterr().out
    assert "6 bp, 18 changes scored" in out and "windows per change" in out
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "x.ism.mean.bw",
        "x.ism.min.bw",
        "x.ism.npy",
        "x.ism.png",
        "x.ism.tsv",
    ]
    assert {ln.split("\t")[9] for ln in (tmp_path / "o" / "x.ism.tsv").read_text().splitlines()[1:]} == {"fwd"}
