"""Tasks cut from the embedded genomes: exon-start windows against GC-matched background, and species of origin,
split by position so train and test never overlap or share a gene."""

import csv
import gzip
import io
import json

import numpy as np
import pytest

from hnet_genomics.cli import main
from hnet_genomics.data import demo
from hnet_genomics.data.bed import read_bed6
from hnet_genomics.data.genome import Genome
from hnet_genomics.errors import DataError
from hnet_genomics.tasks.genome_tasks import exon_start_task, gc_fraction, species_task, split_cut


@pytest.fixture(scope="module")
def exon_task():
    genome = Genome(demo.HUMAN_FASTA)
    genes = read_bed6(demo.HUMAN_GENES_BED)
    splits, summary = exon_start_task(genome, read_bed6(demo.HUMAN_EXONS_BED), read_bed6(demo.HUMAN_CDS_BED), genes)
    return splits, summary, genes


def test_exon_start_windows_are_in_transcript_orientation_with_the_acceptor_at_the_centre(exon_task):
    splits, _, _ = exon_task
    positives = [w for ws in splits.values() for w in ws if w.label == "1"]
    assert len(positives) > 500 and {w.strand for w in positives} == {"+", "-"}
    # internal exons start right after an intron ending in AG; first exons (transcription starts) do not
    acceptor = np.mean([w.sequence[98:100] == b"AG" for w in positives])
    background = np.mean([w.sequence[98:100] == b"AG" for ws in splits.values() for w in ws if w.label == "0"])
    assert acceptor > 0.8 and background < 0.1


def test_background_is_matched_in_gc_and_orientation_and_far_from_exon_edges(exon_task):
    splits, summary, _ = exon_task
    edges = np.array(sorted({p for e in read_bed6(demo.HUMAN_EXONS_BED) for p in (e.start, e.end)}))
    for ws in splits.values():
        pairs = list(zip(ws[::2], ws[1::2]))
        assert all(p.label == "1" and n.label == "0" for p, n in pairs)
        assert all(abs(gc_fraction(p.sequence) - gc_fraction(n.sequence)) <= 0.02 for p, n in pairs)
        assert all(p.strand == n.strand for p, n in pairs)
        centres = np.array([(n.start + n.end) // 2 for _, n in pairs])
        assert np.abs(centres[:, None] - edges[None]).min() >= summary["min_distance"]
    assert summary["counts"]["train"]["1"] == summary["counts"]["train"]["0"] > 500
    assert summary["counts"]["test"]["1"] == summary["counts"]["test"]["0"] > 80


def test_exon_split_never_overlaps_or_shares_a_gene(exon_task):
    splits, summary, genes = exon_task
    cut = summary["cuts"]["BA000025.2"]
    assert cut >= int(0.85 * 2_229_817)  # inside the part pretraining holds out
    assert max(w.end for w in splits["train"]) <= cut <= min(w.start for w in splits["test"])
    assert not any(g.start < cut < g.end for g in genes)
    assert split_cut(100, 0.5, [(40, 60), (55, 80)]) == 80  # moved past overlapping genes


def test_species_windows_come_from_each_genome_part_in_both_orientations():
    genomes = {"human": Genome(demo.HUMAN_FASTA), "ecoli": Genome(demo.ECOLI_FASTA)}
    splits, summary = species_task(genomes, 300, 50, seed=1)
    assert summary["counts"] == {"train": {"human": 300, "ecoli": 300}, "test": {"human": 50, "ecoli": 50}}
    for split, ws in splits.items():
        for w in ws:
            cut = summary["cuts"][f"{w.label}:{w.chrom}"]
            assert (w.end <= cut) if split == "train" else (w.start >= cut)
            assert len(w.sequence) == 200 and set(w.sequence) <= set(b"ACGT")
        assert {w.strand for w in ws} == {"+", "-"}
        starts = [(w.chrom, w.start) for w in ws]
        assert len(set(starts)) == len(starts)  # no window twice
    with pytest.raises(DataError, match="only"):
        species_task(genomes, 20, 20, width=200, test_from=0.9999)  # 223 bp of human test part: one window


def test_make_task_command_writes_readable_splits(tmp_path):
    assert main(["make-task", "exon-starts", "--out", str(tmp_path / "exon")]) == 0
    rows = list(csv.DictReader(io.StringIO(gzip.decompress((tmp_path / "exon" / "test.csv.gz").read_bytes()).decode())))
    info = json.loads((tmp_path / "exon" / "task.json").read_text())
    assert info["stranded"] and len(rows) == sum(info["counts"]["test"].values())
    assert {r["label"] for r in rows} == {"0", "1"} and all(len(r["sequence"]) == 200 for r in rows)
