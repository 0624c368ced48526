"""`likelihood`: per-base bits equal the model's own NLL, stitched like the boundary tracks, sharded and merged."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pybigtools
import pytest
import torch

from hnet_genomics import build_model, load_config
from hnet_genomics.cli import main
from hnet_genomics.data import demo
from hnet_genomics.data.encoding import reverse_complement
from hnet_genomics.data.genome import Genome
from hnet_genomics.export.likelihood import export_likelihood
from hnet_genomics.export.regions import Region
from hnet_genomics.inference.engine import InferenceEngine
from hnet_genomics.inference.likelihood import likelihood_blocks, strand_mean
from hnet_genomics.inference.windows import plan_windows, reverse_keep_ends

CHROM = "BA000025.2"
REGION = Region(CHROM, 100_000, 100_900)


@pytest.fixture(scope="module")
def genome() -> Genome:
    return Genome(demo.HUMAN_FASTA)


@pytest.fixture(scope="module", params=["dna/hnet_1stage_tiny", "dna/hnet_2stage_tiny"])
def model(request):
    torch.manual_seed(0)
    return build_model(load_config(request.param)).eval()


def single_pass_bits(model, seq: bytes) -> np.ndarray:
    """-log2 p(x_t | x_<t) of one forward pass over ``seq``; NaN at t = 0."""
    ids = torch.tensor(list(seq))[None]
    with torch.inference_mode():
        logp = torch.log_softmax(model(ids).logits[0, :-1].double(), -1).gather(-1, ids[0, 1:, None])[:, 0]
    return np.concatenate(([np.nan], -logp.numpy() / math.log(2)))


def stitched(model, genome, regions, window, overlap, strand="both", batch_size=4) -> dict[str, np.ndarray]:
    blocks = list(
        likelihood_blocks(InferenceEngine(model, batch_size=batch_size), genome, regions, window, overlap, strand)
    )
    return {k: np.concatenate([b.tracks[k] for b in blocks]) for k in blocks[0].tracks}


def test_track_equals_per_base_nll_of_a_single_forward_pass_when_the_window_covers_the_region(model, genome):
    seq = genome.fetch(CHROM, REGION.start, REGION.end)
    t = stitched(model, genome, [REGION], window=1024, overlap=256)
    np.testing.assert_allclose(t["fwd"], single_pass_bits(model, seq), rtol=1e-5, atol=1e-5)
    rev = single_pass_bits(model, reverse_complement(seq))[::-1]  # base i: its complement given the bases after it
    np.testing.assert_allclose(t["rev"], rev, rtol=1e-5, atol=1e-5)
    assert np.isnan(t["fwd"][0]) and np.isnan(t["rev"][-1]) and not np.isnan(t["mean"]).any()
    np.testing.assert_allclose(t["mean"][1:-1], (t["fwd"][1:-1] + t["rev"][1:-1]) / 2)
    assert t["mean"][0] == t["rev"][0] and t["mean"][-1] == t["fwd"][-1]


def test_each_base_takes_its_value_from_the_window_with_the_most_context_on_its_strand(model, genome):
    region = Region(CHROM, 200_000, 201_500)
    window, overlap = 400, 100
    t = stitched(model, genome, [region], window, overlap)
    fwd = np.full(len(region), np.nan)
    rev = np.full(len(region), np.nan)
    for w, rev_end in reverse_keep_ends(plan_windows(region, window, overlap)):
        seq = genome.fetch(CHROM, w.start, w.end)
        a = w.start - region.start
        fwd[w.keep_from - region.start : w.end - region.start] = single_pass_bits(model, seq)[w.keep_from - w.start :]
        r = single_pass_bits(model, reverse_complement(seq))[::-1]
        rev[a : rev_end - region.start] = r[: rev_end - w.start]
        assert w.keep_from - w.start >= overlap or w.start == region.start
        assert w.end - rev_end >= overlap or w.end == region.end  # at least overlap bases of right context
    assert not np.isnan(rev[:-1]).any() and not np.isnan(fwd[1:]).any()
    np.testing.assert_allclose(t["fwd"], fwd, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(t["rev"], rev, rtol=1e-5, atol=1e-5)


def test_strand_mean_uses_the_strand_that_has_a_value():
    f, r = np.array([np.nan, 1.0, 2.0, np.nan]), np.array([3.0, 3.0, np.nan, np.nan])
    np.testing.assert_array_equal(strand_mean(f, r), [3.0, 2.0, 2.0, np.nan])


def test_ambiguous_bases_have_no_value(model):
    class Seq:
        path, sizes = "mem", {"s": 60}

        @staticmethod
        def fetch(chrom, start, end):
            return (b"ACGTTGCA" * 4 + b"NNNN" + b"ACGTACGT" * 3)[start:end]

    t = stitched(model, Seq, [Region("s", 0, 60)], 64, 16)
    assert np.isnan(t["fwd"][32:36]).all() and np.isnan(t["rev"][32:36]).all()
    assert not np.isnan(t["fwd"][36:]).any() and not np.isnan(t["rev"][:32]).any()


@pytest.fixture(scope="module")
def exported(model, genome, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bits")
    regions = [REGION, Region(CHROM, 2_229_817 - 500, 2_229_817)]
    res = export_likelihood(
        InferenceEngine(model), genome, regions, tmp / "hla", ("bedgraph", "bigwig"), 300, 100, "both"
    )
    return tmp, regions, res


def test_bigwig_and_bedgraph_carry_every_base_value_rounded_to_a_thousandth_of_a_bit(model, genome, exported):
    tmp, regions, res = exported
    assert res.bases == sum(len(r) for r in regions)
    assert sorted(p.name for p in res.files) == sorted(
        [f"hla.bits.{k}.{e}" for k in ("fwd", "rev", "mean") for e in ("bedGraph", "bw")] + ["hla.chrom.sizes"]
    )
    values = stitched(model, genome, regions, 300, 100)
    for kind in ("fwd", "rev", "mean"):
        lines = (tmp / f"hla.bits.{kind}.bedGraph").read_text().splitlines()
        assert lines[0].startswith("track type=bedGraph")
        track = np.full(sum(len(r) for r in regions), np.nan)
        offsets = {r.start: sum(len(q) for q in regions[:i]) for i, r in enumerate(regions)}
        bw = pybigtools.open(str(tmp / f"hla.bits.{kind}.bw"))
        got = np.concatenate([bw.values(CHROM, r.start, r.end, fillna=np.nan) for r in regions])
        for line in lines[1:]:
            _, a, b, v = line.split("\t")
            r = next(r for r in regions if r.start <= int(a) < r.end)
            track[offsets[r.start] + int(a) - r.start : offsets[r.start] + int(b) - r.start] = float(v)
        expected = values[kind]
        np.testing.assert_array_equal(np.isnan(track), np.isnan(expected))
        np.testing.assert_allclose(track, expected, atol=5e-4 + 1e-5)  # rounded to 3 decimals
        np.testing.assert_array_equal(track, np.round(track, 3))
        np.testing.assert_allclose(got, track, atol=1e-6)
        assert res.mean_bits[kind] == pytest.approx(np.nanmean(values[kind].astype(np.float64)), rel=1e-6)


def test_first_base_of_each_region_has_no_forward_value(exported):
    tmp, regions, _ = exported
    starts = {int(ln.split("\t")[1]) for ln in (tmp / "hla.bits.fwd.bedGraph").read_text().splitlines()[1:]}
    assert all(r.start not in starts and r.start + 1 in starts for r in regions)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "hnet"
    torch.manual_seed(0)
    build_model(load_config("dna/hnet_1stage_tiny")).save_pretrained(path)
    return path


def run_cli(saved: Path, tmp: Path, out: str, *extra: str) -> int:
    (tmp / "r.bed").write_text(f"{CHROM}\t40000\t41000\n{CHROM}\t5000\t6200\n{CHROM}\t20000\t20500\n")
    return main(
        [
            "likelihood",
            "--model",
            str(saved),
            "--fasta",
            str(demo.HUMAN_FASTA),
            "--regions",
            str(tmp / "r.bed"),
            "--out",
            str(tmp / out),
            "--window",
            "512",
            "--quiet",
            *extra,
        ]
    )


def test_sharded_likelihood_merged_equals_the_unsharded_run(saved, tmp_path):
    assert run_cli(saved, tmp_path, "full", "--strand", "both") == 0
    for k in range(1, 5):
        assert run_cli(saved, tmp_path, f"s{k}", "--strand", "both", "--shard", f"{k}/4", "--formats", "bedgraph") == 0
    assert (
        main(
            [
                "merge-tracks",
                "--shards",
                *(str(tmp_path / f"s{k}") for k in (2, 4, 1, 3)),
                "--out",
                str(tmp_path / "merged"),
                "--formats",
                "bedgraph,bigwig",
            ]
        )
        == 0
    )
    for kind in ("fwd", "rev", "mean"):
        full = (tmp_path / f"full.bits.{kind}.bedGraph").read_text().splitlines()[1:]
        merged = (tmp_path / f"merged.bits.{kind}.bedGraph").read_text().splitlines()[1:]
        assert merged == full and len(full) > 2000
        a = pybigtools.open(str(tmp_path / f"full.bits.{kind}.bw")).values(CHROM, 5000, 41000, fillna=np.nan)
        b = pybigtools.open(str(tmp_path / f"merged.bits.{kind}.bw")).values(CHROM, 5000, 41000, fillna=np.nan)
        np.testing.assert_array_equal(a, b)


def test_cli_reports_mean_bits_and_refuses_bad_options(saved, tmp_path, capsys):
    assert run_cli(saved, tmp_path, "x") == 0
    assert capsys.readouterr().out == ""  # --quiet
    assert (
        main(
            [
                "likelihood",
                "--model",
                str(saved),
                "--fasta",
                str(demo.HUMAN_FASTA),
                "--out",
                str(tmp_path / "y"),
                "--window",
                "256",
                "--regions",
                str(tmp_path / "r.bed"),
            ]
        )
        == 0
    )
    assert "mean bits per base: fwd" in capsys.readouterr().out
    for extra, message in (
        (["--formats", "bed"], "--formats: unknown format 'bed'"),
        (["--precision", "fp16"], "--precision: 'fp16' is not one of"),
        (["--overlap", "600"], "--overlap must be in [0, window)"),
        (["--batch-size", "0"], "--batch-size: expected a positive integer"),
    ):
        try:
            rc = run_cli(saved, tmp_path, "z", *extra)
        except SystemExit as e:  # the option parser's own one-line error
            rc = e.code
        assert rc == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("hnet-genomics: error: ") and message in err and "\n" not in err
    assert not list(tmp_path.glob("z*"))
