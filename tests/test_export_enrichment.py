"""`hnet-genomics enrichment`: boundaries at annotated exon edges against a within-region shuffle null."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hnet_genomics.cli import main
from hnet_genomics.data import demo
from hnet_genomics.data.genome import Genome
from hnet_genomics.errors import DataError
from hnet_genomics.export import enrichment as en

CHROM = "BA000025.2"
START, END = 0, 300_000  # the first 300 kb of the HLA demo record hold ~90 annotated exons


@pytest.fixture(scope="module")
def exons() -> dict[str, en.Intervals]:
    return en.read_bed(demo.HUMAN_EXONS_BED)


@pytest.fixture(scope="module")
def cpg_chunks(tmp_path_factory) -> tuple:
    """A real-sequence segmentation: a chunk starts at every CpG of the region (a model-free stand-in)."""
    seq = np.frombuffer(Genome(demo.HUMAN_FASTA).fetch(CHROM, START, END).upper(), np.uint8)
    starts = np.concatenate(([0], np.flatnonzero((seq[:-1] == ord("C")) & (seq[1:] == ord("G"))) + 1)) + START
    ends = np.append(starts[1:], END)
    path = tmp_path_factory.mktemp("cpg") / "cpg.stage1.bed"
    path.write_text(
        'track name="cpg"\n' + "".join(f"{CHROM}\t{a}\t{b}\tc\t0\t.\t{a}\t{b}\t0,0,0\n" for a, b in zip(starts, ends))
    )
    return path, starts, ends


def regions_and_boundaries(starts: np.ndarray, ends: np.ndarray):
    chunks = en.Intervals(starts, ends, np.ones_like(starts))
    rs, re = en.tiled_regions(chunks)
    return {CHROM: (rs, re)}, {CHROM: en.chunk_boundaries(chunks, rs)}


def test_tiling_gives_one_region_and_drops_its_forced_first_boundary(cpg_chunks):
    _, starts, ends = cpg_chunks
    regions, bounds = regions_and_boundaries(starts, ends)
    assert [list(x) for x in regions[CHROM]] == [[START], [END]]
    assert len(bounds[CHROM]) == len(starts) - 1 and bounds[CHROM][0] > START


def test_shuffle_null_matches_explicit_shuffling(cpg_chunks, exons):
    _, starts, ends = cpg_chunks
    regions, bounds = regions_and_boundaries(starts, ends)
    edges = {CHROM: en.feature_edges(exons[CHROM], "both")[0]}
    res = en.edge_enrichment(bounds, regions, edges, flank=10, n_permutations=200, seed=1)
    rng = np.random.default_rng(2)
    n = len(bounds[CHROM])
    shuffled = [
        en._near(rng.choice(np.arange(START + 1, END), n, replace=False), edges[CHROM], 10).sum() for _ in range(200)
    ]
    assert res.n_boundaries == n and res.n_edges > 100
    assert abs(np.mean(shuffled) - res.expected) < 4 * np.std(shuffled) / np.sqrt(200)


def test_boundaries_planted_at_exon_edges_are_enriched_and_random_ones_are_not(exons):
    rng = np.random.default_rng(0)
    pos, _, _ = en.feature_edges(exons[CHROM], "both")
    pos = pos[(pos > START) & (pos < END)]
    background = rng.choice(np.arange(START + 1, END), 20_000, replace=False)
    regions = {CHROM: (np.array([START]), np.array([END]))}
    edges = {CHROM: pos}
    null = en.edge_enrichment({CHROM: np.sort(background)}, regions, edges, flank=5, n_permutations=999)
    planted = en.edge_enrichment({CHROM: np.union1d(background, pos + 2)}, regions, edges, flank=5, n_permutations=999)
    assert 0.7 < null.ratio < 1.3 and null.p_enrichment > 0.01
    assert planted.ratio > 1.5 and planted.p_enrichment == pytest.approx(1 / 1000)


def test_edge_profile_peaks_at_the_planted_offset_in_feature_orientation(exons):
    five = en.feature_edges(exons[CHROM], "5prime")
    pos, sign = five[0], five[1]
    keep = (pos > START + 50) & (pos < END - 50)
    planted = np.unique(pos[keep] + 7 * sign[keep])  # 7 bp downstream of every 5' edge, on either strand
    regions = {CHROM: (np.array([START]), np.array([END]))}
    offsets, profile = en.edge_profile({CHROM: planted}, regions, {CHROM: five}, half_width=20)
    assert set(profile) == {"5prime"}
    assert offsets[np.argmax(profile["5prime"])] == 7 and profile["5prime"].max() == 1.0


def test_chunk_lengths_are_split_by_the_middle_base():
    chunks = {"c": en.Intervals(np.array([0, 10, 30]), np.array([10, 30, 31]), np.ones(3, np.int64))}
    features = {"c": en.Intervals(np.array([15]), np.array([25]), np.ones(1, np.int64))}
    inside, outside = en.chunk_lengths_by_feature(chunks, features)
    assert inside.tolist() == [20] and sorted(outside.tolist()) == [1, 10]


def test_enrichment_command_writes_reports_on_real_exons(cpg_chunks, tmp_path, capsys):
    path, starts, _ = cpg_chunks
    out = tmp_path / "enrich"
    rc = main(
        [
            "enrichment",
            "--boundaries",
            str(path),
            "--annotation",
            str(demo.HUMAN_EXONS_BED),
            "--out",
            str(out),
            "--flank",
            "0,10",
            "--permutations",
            "200",
        ]
    )
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "chunk_lengths.tsv",
        "edge_density.png",
        "edge_profile.tsv",
        "enrichment.tsv",
        "summary.json",
    ]
    summary = json.loads((out / "summary.json").read_text())
    rows = summary["enrichment"]
    assert [r["flank"] for r in rows] == [0, 10] and rows[0]["n_boundaries"] == len(starts) - 1
    assert rows[0]["observed"] <= rows[1]["observed"]
    assert (out / "edge_density.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len((out / "edge_profile.tsv").read_text().splitlines()) == 1 + 201
    assert "ratio" in capsys.readouterr().out


def test_annotation_on_other_chromosomes_is_a_clear_error(cpg_chunks, tmp_path):
    path, _, _ = cpg_chunks
    ann = tmp_path / "ann.bed"
    ann.write_text("chr6\t100\t200\tx\t0\t+\n")
    with pytest.raises(DataError, match=r"ann\.bed: no feature lies on a chromosome of .*annotation has 'chr6'"):
        en.run_enrichment(path, ann, tmp_path / "o", [5], n_permutations=10)
    assert not (tmp_path / "o").exists()  # inputs are checked before the output folder is made


def test_malformed_annotation_names_file_and_line(tmp_path):
    ann = tmp_path / "ann.bed"
    ann.write_text(f"{CHROM}\t100\t200\tx\t0\t+\n{CHROM}\t300\t250\tx\t0\t+\n")
    with pytest.raises(DataError, match=r"ann\.bed:2: invalid interval"):
        en.read_bed(ann)


def test_the_density_figure_title_stays_inside_the_figure():
    """Four flanks with their ratios and p-values used to run off the panel's edge."""
    import matplotlib.pyplot as plt

    rows = [en.EdgeEnrichment(k, "both", 10_000, 156, 500, 480.0, 1.0417, 0.0123, 0.99, 10_000) for k in (0, 5, 10, 25)]
    offsets = np.arange(-100, 101)
    fig = en.edge_figure(
        offsets,
        {"5prime": np.full(201, 0.3)},
        0.3,
        np.array([3, 4, 5]),
        np.array([2, 3]),
        rows,
        "human_chr6p21_hla.exons.bed",
    )
    fig.canvas.draw()
    title = fig.axes[0].title.get_window_extent(fig.canvas.get_renderer())
    box = fig.bbox
    assert box.x0 <= title.x0 and title.x1 <= box.x1 and title.y1 <= box.y1
    assert "±25 bp ratio 1.04" in fig.axes[0].get_title()
    plt.close(fig)
