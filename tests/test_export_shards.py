"""`boundaries --shard K/N` + `merge-tracks`: a genome split over jobs gives the tracks of one unsharded run."""

from __future__ import annotations

import re
from pathlib import Path

import pybigtools
import pysam
import pytest
import torch

from hnet_genomics import build_model, load_config
from hnet_genomics.cli import main
from hnet_genomics.data import demo
from hnet_genomics.errors import ConfigError
from hnet_genomics.export.regions import Region
from hnet_genomics.export.shards import parse_shard, select_shard

CHROM = "BA000025.2"
BED_LINES = f"{CHROM}\t40000\t43000\n{CHROM}\t5000\t7000\n{CHROM}\t20000\t21000\n"  # unsorted on purpose


@pytest.mark.parametrize(
    "lengths,n", [([10, 10, 10, 10], 2), ([100, 1, 1, 1, 1], 3), ([5, 7, 9, 11, 13, 2], 4), ([3, 3], 5), ([1000], 3)]
)
def test_shards_partition_the_sorted_regions_into_contiguous_length_balanced_groups(lengths, n):
    regions, start = [], 0
    for length in lengths:
        regions.append(Region("chr1", start, start + length))
        start += length + 50
    shards = [select_shard(list(reversed(regions)), k, n) for k in range(1, n + 1)]
    assert [r for s in shards for r in s] == regions  # every region once, in genome order
    total = sum(lengths)
    for s in shards:
        assert sum(len(r) for r in s) <= total / n + max(lengths)  # its cut plus the regions straddling it


@pytest.mark.parametrize("text", ["0/3", "4/3", "a/b", "3", "1/0", "-1/2"])
def test_bad_shard_spec_is_refused(text):
    with pytest.raises(ConfigError, match="--shard expects K/N"):
        parse_shard(text)
    assert parse_shard(" 2 / 8 ") == (2, 8)


@pytest.fixture(scope="module")
def hnet2(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "hnet2"
    torch.manual_seed(0)
    build_model(load_config("dna/hnet_2stage_tiny")).save_pretrained(path)
    return path


def export(model: Path, tmp: Path, out: str, *extra: str) -> int:
    (tmp / "r.bed").write_text(BED_LINES)
    return main(
        [
            "boundaries",
            "--model",
            str(model),
            "--fasta",
            str(demo.HUMAN_FASTA),
            "--regions",
            str(tmp / "r.bed"),
            "--out",
            str(tmp / out),
            "--window",
            "512",
            "--no-progress",
            *extra,
        ]
    )


def data(path: Path) -> list[str]:
    return path.read_text().splitlines()[1:]


@pytest.fixture(scope="module")
def sharded(hnet2, tmp_path_factory):
    """The same regions exported once, and as 4 shards (one of them empty) merged in a scrambled order."""
    tmp = tmp_path_factory.mktemp("sharded")
    assert export(hnet2, tmp, "full") == 0
    for k in range(1, 5):
        assert export(hnet2, tmp, f"s{k}", "--shard", f"{k}/4", "--formats", "bed,bedgraph") == 0
    assert (
        main(["merge-tracks", "--shards", *(str(tmp / f"s{k}") for k in (3, 1, 4, 2)), "--out", str(tmp / "merged")])
        == 0
    )
    return tmp


def test_merged_shards_equal_the_unsharded_export_in_every_format(sharded):
    shard_regions = [len(data(sharded / f"s{k}.stage1.bed")) for k in range(1, 5)]
    assert shard_regions.count(0) == 1 and sum(shard_regions) == len(data(sharded / "full.stage1.bed"))
    for s in (1, 2):
        for ext in ("bed", "bedGraph"):
            assert data(sharded / f"merged.stage{s}.{ext}") == data(sharded / f"full.stage{s}.{ext}")
        for ext in ("bw", "bb"):
            full, merged = (pybigtools.open(str(sharded / f"{name}.stage{s}.{ext}")) for name in ("full", "merged"))
            records = list(full.records(CHROM))
            assert records and list(merged.records(CHROM)) == records
        with pysam.TabixFile(str(sharded / f"merged.stage{s}.bed.gz")) as tbx:
            assert [ln.split("\t")[:3] for ln in tbx.fetch(CHROM, 0, 50000)] == [
                ln.split("\t")[:3] for ln in data(sharded / f"full.stage{s}.bed")
            ]
    assert (sharded / "merged.chrom.sizes").read_text() == (sharded / "full.chrom.sizes").read_text()


def fake_shard(sharded: Path, tmp: Path, like: str, exts: tuple[str, ...], shard: tuple[int, int] | None = None) -> str:
    """A shard prefix holding copies of some of another shard's files (and its manifest, edited)."""
    import json

    for ext in exts:
        (tmp / f"x.{ext}").write_text((sharded / f"{like}.{ext}").read_text())
    manifest = json.loads((sharded / f"{like}.tracks.json").read_text())
    if shard is not None:
        manifest["shard"] = list(shard)
    (tmp / "x.tracks.json").write_text(json.dumps(manifest))
    return str(tmp / "x")


@pytest.mark.parametrize(
    "case,message",
    [
        ("incomplete", r"shard\(s\) 2/4, 4/4 missing; a merge needs all 4 shards"),
        ("duplicate", r"shard 1/4 is given twice"),
        ("unsharded", "an unsharded export"),
        ("other-export", "another model, genome, region set or window"),
        ("other-count", "is one of 4"),
        ("no-manifest", r"tracks\.json: missing; merge-tracks takes the prefixes"),
        ("overlap", "overlap or interleave"),
        ("sizes", "differs from .*chrom.sizes"),
        ("bedgraph", r"stage1.bedGraph: missing \(export the shards with --formats bed,bedgraph\)"),
        ("stages", "more chunking stages"),
    ],
)
def test_merge_refuses_shards_that_do_not_fit_together_with_one_line(sharded, hnet2, tmp_path, capsys, case, message):
    shards = [str(sharded / f"s{k}") for k in range(1, 5)]
    if case == "incomplete":
        shards = [shards[0], shards[2]]
    elif case == "duplicate":
        shards.append(shards[0])
    elif case == "unsharded":
        shards[0] = str(sharded / "full")
    elif case == "other-export":
        assert export(hnet2, tmp_path, "w", "--shard", "1/4", "--window", "256", "--formats", "bed,bedgraph") == 0
        shards[0] = str(tmp_path / "w")
    elif case == "other-count":
        assert export(hnet2, tmp_path, "w", "--shard", "1/2", "--formats", "bed,bedgraph") == 0
        shards.append(str(tmp_path / "w"))
    elif case == "no-manifest":
        (tmp_path / "x.chrom.sizes").write_text((sharded / "s1.chrom.sizes").read_text())
        shards[0] = str(tmp_path / "x")
    elif case == "overlap":  # shard 1's manifest over shard 2's tracks
        shards[0] = fake_shard(
            sharded,
            tmp_path,
            "s2",
            ("stage1.bed", "stage2.bed", "stage1.bedGraph", "stage2.bedGraph", "chrom.sizes"),
            shard=(1, 4),
        )
    elif case == "sizes":
        shards[1] = fake_shard(
            sharded, tmp_path, "s2", ("stage1.bed", "stage2.bed", "stage1.bedGraph", "stage2.bedGraph")
        )
        (tmp_path / "x.chrom.sizes").write_text("chrZ\t10\n")
    elif case == "bedgraph":
        shards[0] = fake_shard(sharded, tmp_path, "s1", ("stage1.bed", "chrom.sizes"))
    elif case == "stages":
        shards[0] = fake_shard(sharded, tmp_path, "s1", ("stage1.bed", "stage1.bedGraph", "chrom.sizes"))
    out = tmp_path / "out"
    out.mkdir()
    rc = main(["merge-tracks", "--shards", *shards, "--out", str(out / "m")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and re.search(message, err), err
    assert list(out.iterdir()) == []


def test_merge_creates_the_output_folder_and_writes_its_own_manifest(sharded, tmp_path):
    import json

    out = tmp_path / "new" / "deeper" / "m"
    assert (
        main(
            [
                "merge-tracks",
                "--shards",
                *(str(sharded / f"s{k}") for k in range(1, 5)),
                "--out",
                str(out),
                "--formats",
                "bed",
            ]
        )
        == 0
    )
    manifest = json.loads(Path(f"{out}.tracks.json").read_text())
    assert manifest["shard"] is None and manifest["files"] == ["m.chrom.sizes", "m.stage1.bed", "m.stage2.bed"]
    assert manifest["export"] == json.loads((sharded / "s1.tracks.json").read_text())["export"]


def test_bad_shard_option_fails_before_loading_the_model(tmp_path, capsys):
    assert export(tmp_path / "no-model", tmp_path, "x", "--shard", "5/4") == 2
    assert "--shard expects K/N" in capsys.readouterr().err


def test_shard_order_reads_the_first_and_last_chunk_of_a_large_bed(sharded):
    from hnet_genomics.export.shards import _first_and_last

    bed = sharded / "full.stage1.bed"
    assert bed.stat().st_size > 4096  # the last line is read from the tail, not by scanning
    lines = data(bed)
    assert _first_and_last(bed) == (lines[0].split("\t"), lines[-1].split("\t"))
