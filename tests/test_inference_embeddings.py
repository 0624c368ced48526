"""`embed`: embeddings equal the model's own features, chunks line up with the boundary tracks, files read back."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from hnet_genomics import build_model, from_pretrained, load_config
from hnet_genomics.cli import main
from hnet_genomics.data import demo
from hnet_genomics.data.encoding import reverse_complement
from hnet_genomics.data.genome import Genome
from hnet_genomics.errors import ConfigError
from hnet_genomics.export.boundaries import predict_blocks
from hnet_genomics.export.regions import Region
from hnet_genomics.inference.embeddings import EmbeddingConfig, embed_spans, embed_stranded
from hnet_genomics.inference.engine import InferenceEngine
from hnet_genomics.tasks.heads import masked_mean, pool

CHROM = "BA000025.2"
SPANS = [Region(CHROM, 100_000, 100_300), Region(CHROM, 5_000, 5_170), Region(CHROM, 100_000, 100_300)]


@pytest.fixture(scope="module")
def genome() -> Genome:
    return Genome(demo.HUMAN_FASTA)


@pytest.fixture(scope="module", params=["dna/hnet_1stage_tiny", "dna/hnet_2stage_tiny"])
def model(request):
    torch.manual_seed(0)
    return build_model(load_config(request.param)).eval()


def direct(model, genome, span):
    ids = torch.tensor(list(genome.fetch(span.chrom, span.start, span.end)))[None]
    mask = torch.ones_like(ids, dtype=torch.bool)
    with torch.inference_mode():
        return model(ids, mask=mask), mask


@pytest.mark.parametrize("pooling", ["mean", "chunk", "last"])
def test_embeddings_equal_the_model_features_the_task_heads_pool(model, genome, pooling):
    items = list(embed_spans(InferenceEngine(model, batch_size=2), genome, SPANS, EmbeddingConfig(pooling), 1024, 256))
    assert [it.span for it in items] == SPANS  # one per span, in order, repeats kept
    for it in items:
        out, mask = direct(model, genome, it.span)
        np.testing.assert_allclose(it.vector, pool(out, mask, pooling)[0].numpy(), rtol=1e-5, atol=1e-6)


def test_deepest_stage_embeddings_equal_the_innermost_network_output(model, genome):
    stages = model.config.num_stages
    for pooling in ("chunk", "mean", "last"):
        cfg = EmbeddingConfig(pooling, stage=stages)
        for it in embed_spans(InferenceEngine(model), genome, SPANS[:2], cfg, 1024, 256):
            out, _ = direct(model, genome, it.span)
            h, valid = out.stage_hidden[-1][0], out.level_masks[-1][0]
            if pooling == "chunk":
                expected = masked_mean(h[None], valid[None])[0]
            elif pooling == "last":
                expected = h[valid][-1]
            else:  # every base takes the vector of the deepest chunk it lies in
                starts = np.flatnonzero(_base_starts(out, stages))
                lengths = np.diff(np.append(starts, len(it.span)))
                expected = (h[valid].double() * torch.tensor(lengths)[:, None]).sum(0) / len(it.span)
            assert h.shape[-1] == model.config.d_model[stages]
            np.testing.assert_allclose(it.vector, expected.float().numpy(), rtol=1e-5, atol=1e-6)


def _base_starts(out, stages: int) -> np.ndarray:
    """Bases where a chunk of the deepest stage starts (each level's boundaries mapped down to bases)."""
    base_of = np.arange(out.boundary_masks[0].shape[1])
    for s in range(stages):
        base_of = base_of[np.flatnonzero(out.boundary_masks[s][0].numpy() & out.level_masks[s][0].numpy())]
    mask = np.zeros(out.boundary_masks[0].shape[1], bool)
    mask[base_of] = True
    return mask


def test_tiled_per_chunk_embeddings_follow_the_stitched_boundary_tracks(model, genome):
    """A 3 kb region in 512-base windows: chunk coordinates are the boundary export's chunks, exactly."""
    region = Region(CHROM, 300_000, 303_000)
    cfg = EmbeddingConfig("mean", per_chunk=True)
    (item,) = embed_spans(InferenceEngine(model), genome, [region], cfg, 512, 128)
    blocks = list(predict_blocks(model, genome, [region], window=512, overlap=128))
    starts = region.start + np.flatnonzero(np.concatenate([b.boundaries[0] for b in blocks]))
    np.testing.assert_array_equal(item.chunk_starts, starts)
    np.testing.assert_array_equal(item.chunk_ends, np.append(starts[1:], region.end))
    assert item.chunk_vectors.shape == (len(starts), model.config.d_model[1])
    (first,) = embed_spans(InferenceEngine(model), genome, [Region(CHROM, 300_000, 300_512)], cfg, 512, 128)
    n = np.searchsorted(item.chunk_starts, 300_512)
    np.testing.assert_allclose(item.chunk_vectors[:n], first.chunk_vectors[:n], atol=1e-6)  # the first window


def test_stage_and_pooling_choices_are_checked():
    with pytest.raises(ConfigError, match="--pooling chunk needs --stage 1"):
        EmbeddingConfig("chunk", stage=0).resolved_stage(1)
    with pytest.raises(ConfigError, match="--stage 3: this model has stages 0 .bases. to 2"):
        EmbeddingConfig("mean", stage=3).resolved_stage(2)
    with pytest.raises(ConfigError, match="isotropic"):
        EmbeddingConfig("chunk").resolved_stage(0)
    with pytest.raises(ConfigError, match="--per-chunk needs an H-Net"):
        EmbeddingConfig("mean", per_chunk=True).resolved_stage(0)
    assert EmbeddingConfig("chunk").resolved_stage(2) == 1 and EmbeddingConfig("last").resolved_stage(2) == 0


@pytest.mark.parametrize("window", [1024, 128])  # one window, and tiled
def test_minus_strand_spans_embed_the_explicit_reverse_complement(model, genome, window, tmp_path):
    spans = [Region(CHROM, 100_000, 100_300), Region(CHROM, 5_000, 5_170)]
    cfg = EmbeddingConfig("mean", per_chunk=True)
    items = embed_stranded(InferenceEngine(model), genome, spans, ["-", "+"], cfg, window, window // 4)
    assert [it.span for it in items] == spans
    rc = reverse_complement(genome.fetch(CHROM, 100_000, 100_300))
    (tmp_path / "rc.fa").write_text(">rc\n" + rc.decode() + "\n")
    rc_genome = Genome(tmp_path / "rc.fa")
    (expected,) = embed_spans(InferenceEngine(model), rc_genome, [Region("rc", 0, 300)], cfg, window, window // 4)
    np.testing.assert_allclose(items[0].vector, expected.vector, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(items[0].chunk_vectors, expected.chunk_vectors, rtol=1e-5, atol=1e-6)
    # chunks 5' to 3' on the minus strand, in genomic coordinates: [end - rc_end, end - rc_start)
    np.testing.assert_array_equal(items[0].chunk_starts, 100_300 - expected.chunk_ends)
    np.testing.assert_array_equal(items[0].chunk_ends, 100_300 - expected.chunk_starts)
    assert items[0].chunk_ends[0] == 100_300 and items[0].chunk_starts[-1] == 100_000
    (plus,) = embed_spans(InferenceEngine(model), genome, spans[1:], cfg, window, window // 4)
    np.testing.assert_array_equal(items[1].vector, plus.vector)


@pytest.mark.parametrize("pooling", ["mean", "chunk", "last"])
def test_rc_average_is_the_mean_of_both_orientations_and_strand_neutral(model, genome, tmp_path, pooling):
    span = Region(CHROM, 100_000, 100_300)
    cfg = EmbeddingConfig(pooling, rc_average=True)
    (both,) = embed_stranded(InferenceEngine(model), genome, [span], ["+"], cfg, 1024, 256)
    fwd, rc = genome.fetch(CHROM, span.start, span.end), reverse_complement(genome.fetch(CHROM, span.start, span.end))
    vectors = []
    for seq in (fwd, rc):
        ids = torch.tensor(list(seq))[None]
        with torch.inference_mode():
            out = model(ids)
        vectors.append(pool(out, torch.ones_like(ids, dtype=torch.bool), pooling)[0].numpy())
    np.testing.assert_allclose(both.vector, (vectors[0] + vectors[1]) / 2, rtol=1e-5, atol=1e-6)
    (minus,) = embed_stranded(InferenceEngine(model), genome, [span], ["-"], cfg, 1024, 256)
    np.testing.assert_allclose(minus.vector, both.vector, rtol=1e-6, atol=1e-7)  # the strand no longer matters
    with pytest.raises(ConfigError, match="--per-chunk with --rc-average"):
        EmbeddingConfig(pooling, per_chunk=True, rc_average=True).resolved_stage(1)


# ---- command line: every input layout, both output layouts --------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "hnet"
    torch.manual_seed(0)
    build_model(load_config("dna/hnet_1stage_tiny")).save_pretrained(path)
    return path


def embed(saved: Path, *args: str) -> int:
    return main(["embed", "--model", str(saved), "--quiet", *args])


def test_csv_input_gives_npy_rows_and_an_index_in_input_order(saved, tmp_path):
    rows = pd.read_csv(demo.TFBS_TEST).head(5)
    rows[["sequence", "name"]].to_csv(tmp_path / "seqs.csv", index=False)  # no label column
    assert embed(saved, "--input", str(tmp_path / "seqs.csv"), "--out", str(tmp_path / "e.npy")) == 0
    matrix = np.load(tmp_path / "e.npy")
    index = pd.read_csv(tmp_path / "e.tsv", sep="\t")
    assert matrix.shape == (5, 64) and matrix.dtype == np.float32
    assert list(index["name"]) == list(rows["name"]) and list(index["length"]) == [len(s) for s in rows["sequence"]]
    ids = torch.tensor([list(s.upper().encode()) for s in rows["sequence"]])  # all 200 bp: no padding
    with torch.inference_mode():
        out = from_pretrained(saved).eval()(ids)
    np.testing.assert_allclose(matrix, out.hidden_states.mean(1).numpy(), rtol=1e-5, atol=1e-6)


def test_bed_input_with_fasta_keeps_every_line_and_names_it(saved, tmp_path):
    bed = tmp_path / "r.bed.gz"
    bed.write_bytes(gzip.compress(f"track x\n{CHROM}\t1000\t1400\tfirst\n{CHROM}\t1200\t1300\n".encode()))
    assert (
        embed(
            saved,
            "--input",
            str(bed),
            "--fasta",
            str(demo.HUMAN_FASTA),
            "--out",
            str(tmp_path / "e.parquet"),
            "--per-chunk",
            "--pooling",
            "chunk",
        )
        == 0
    )
    table = pd.read_parquet(tmp_path / "e.parquet")
    assert list(table["name"]) == ["first", f"{CHROM}:1200-1300"] and list(table["start"]) == [1000, 1200]
    assert np.stack(table["embedding"]).shape == (2, 96)
    chunks = pd.read_parquet(tmp_path / "e.chunks.parquet")
    for row, (s, e) in enumerate([(1000, 1400), (1200, 1300)]):
        c = chunks[chunks["row"] == row]
        assert (
            c["start"].iloc[0] == s
            and c["end"].iloc[-1] == e
            and (c["start"].iloc[1:].values == c["end"].iloc[:-1].values).all()
        )
    vectors = np.stack(chunks["embedding"])
    np.testing.assert_allclose(np.stack(table["embedding"])[1], vectors[chunks["row"] == 1].mean(0), rtol=1e-5)


def test_bed_strand_column_is_honoured_and_written_to_the_index(saved, tmp_path):
    (tmp_path / "s.bed").write_text(f"{CHROM}\t1000\t1200\ta\t0\t+\n{CHROM}\t1000\t1200\tb\t0\t-\n")
    argv = ["--input", str(tmp_path / "s.bed"), "--fasta", str(demo.HUMAN_FASTA)]
    assert embed(saved, *argv, "--out", str(tmp_path / "e.npy")) == 0
    index = pd.read_csv(tmp_path / "e.tsv", sep="\t")
    assert list(index["strand"]) == ["+", "-"]
    matrix = np.load(tmp_path / "e.npy")
    seq = Genome(demo.HUMAN_FASTA).fetch(CHROM, 1000, 1200)
    model = from_pretrained(saved).eval()
    with torch.inference_mode():
        rc = model(torch.tensor(list(reverse_complement(seq)))[None]).hidden_states.mean(1)[0].numpy()
    np.testing.assert_allclose(matrix[1], rc, rtol=1e-5, atol=1e-6)
    assert not np.allclose(matrix[0], matrix[1], atol=1e-4)
    assert embed(saved, *argv, "--out", str(tmp_path / "avg.npy"), "--rc-average") == 0
    avg = np.load(tmp_path / "avg.npy")
    np.testing.assert_allclose(avg[0], avg[1], rtol=1e-6, atol=1e-7)


def test_fasta_input_embeds_each_record(saved, tmp_path):
    seq = Genome(demo.HUMAN_FASTA).fetch(CHROM, 0, 700).decode()
    (tmp_path / "s.fa").write_text(f">a desc\n{seq[:300]}\n>b\n{seq[300:]}\n")
    assert (
        embed(
            saved,
            "--input",
            str(tmp_path / "s.fa"),
            "--out",
            str(tmp_path / "e.npy"),
            "--pooling",
            "last",
            "--window",
            "256",
        )
        == 0
    )
    index = pd.read_csv(tmp_path / "e.tsv", sep="\t")
    assert list(index["name"]) == ["a", "b"] and list(index["end"]) == [300, 400]
    assert np.load(tmp_path / "e.npy").shape == (2, 64)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--out", "{t}/e.txt"], "name the output OUT.npy"),
        (["--input", "{t}/r.bed"], "a BED file needs --fasta"),
        (["--stage", "2"], "--stage 2: this model has stages 0 (bases) to 1"),
        (["--pooling", "chunk", "--stage", "0"], "--pooling chunk needs --stage 1"),
        (["--input", "{t}/bad.bed", "--fasta", str(demo.HUMAN_FASTA)], "bad.bed:1: chromosome 'chr6' is not in"),
        (["--input", "{t}/strand.bed", "--fasta", str(demo.HUMAN_FASTA)], "strand.bed:2: strand (column 6) must be"),
        (["--per-chunk", "--rc-average"], "--per-chunk with --rc-average"),
    ],
)
def test_bad_input_is_one_line(saved, tmp_path, capsys, args, message):
    (tmp_path / "s.fa").write_text(">a\nACGTACGTAC\n")
    (tmp_path / "r.bed").write_text(f"{CHROM}\t0\t100\n")
    (tmp_path / "bad.bed").write_text("chr6\t0\t100\n")
    (tmp_path / "strand.bed").write_text(f"{CHROM}\t0\t100\ta\t0\t+\n{CHROM}\t0\t100\tb\t0\tminus\n")
    base = {"--input": str(tmp_path / "s.fa"), "--out": str(tmp_path / "e.npy")}
    extra = [a.replace("{t}", str(tmp_path)) for a in args]
    for k in list(base):
        if k in extra:
            base.pop(k)
    assert embed(saved, *[x for kv in base.items() for x in kv], *extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hnet-genomics: error: ") and message in err and "\n" not in err
    assert not list(tmp_path.glob("e.*"))
