"""The one BED reader: plain, gzip and bgzip read alike by every command, with the same rules and messages."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pysam
import pytest

from hnet_genomics.data import demo
from hnet_genomics.data.bed import chrom_hint, read_bed
from hnet_genomics.data.genome import Genome
from hnet_genomics.data.intervals import read_split_bed
from hnet_genomics.errors import DataError
from hnet_genomics.export import enrichment
from hnet_genomics.export.regions import read_regions

CHROM = "BA000025.2"
TEXT = (
    f"track name=test\n# a comment\n\n{CHROM}\t100\t200\tex1\t0\t+\n{CHROM} 300 450 ex2 0 -\n"
    f"browser position x\n{CHROM}\t1000\t1200\tex3\t0\t.\n"
)


@pytest.fixture
def three_encodings(tmp_path):
    plain = tmp_path / "a.bed"
    plain.write_text(TEXT)
    gz = tmp_path / "a.bed.gz"
    gz.write_bytes(gzip.compress(TEXT.encode()))
    bgz = tmp_path / "b.bed"
    shutil.copy(plain, bgz)
    pysam.tabix_compress(str(bgz), str(tmp_path / "b.bed.gz"))  # bgzip, as tabix tracks are
    return plain, gz, tmp_path / "b.bed.gz"


def test_plain_gzip_and_bgzip_give_the_same_records_with_line_numbers(three_encodings):
    results = [[(r.chrom, r.start, r.end, r.fields[3], r.line) for r in read_bed(p)] for p in three_encodings]
    assert results[0] == results[1] == results[2]
    assert results[0] == [(CHROM, 100, 200, "ex1", 4), (CHROM, 300, 450, "ex2", 5), (CHROM, 1000, 1200, "ex3", 7)]


def test_every_command_reads_a_gzipped_bed(three_encodings, tmp_path):
    _, gz, bgz = three_encodings
    genome = Genome(demo.HUMAN_FASTA)
    assert [(r.start, r.end) for r in read_regions(gz, genome.sizes, demo.HUMAN_FASTA)] == [
        (100, 200),
        (300, 450),
        (1000, 1200),
    ]
    features = enrichment.read_bed(bgz)
    assert features[CHROM].sign.tolist() == [1, -1, 1] and features[CHROM].starts.tolist() == [100, 300, 1000]
    split = tmp_path / "s.bed.gz"
    split.write_bytes(gzip.compress(f"{CHROM}\t0\t5000\ttrain\n{CHROM}\t5000\t6000\tvalid\n".encode()))
    assert [iv.end for iv in read_split_bed(split, genome)["valid"]] == [6000]


@pytest.mark.parametrize(
    "content,message",
    [
        (b"chr1\t10\n", r":1: a BED line needs chrom, start and end, got 2 field"),
        (b"chr1\t10\t5\n", r":1: invalid interval chr1:10-5 \(need 0 <= start < end"),
        (b"chr1\t-1\t5\n", r":1: invalid interval chr1:-1-5"),
        (b"chr1\t5\t5\n", r":1: empty interval chr1:5-5"),
        (b"chr1\t1.5\t5\n", r":1: start '1.5' and end '5' must be integers"),
        (b"chr1\t1\t5\n\xff\xfe\n", r":2: byte 0xff is not UTF-8 text; is this a BED file\?"),
        (b"chr1\t1\t5\x00\n", r":1: binary data \(NUL byte\)"),
        (b"# only a comment\n\n", r": no intervals \(only blank, comment or header lines\)"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "x.bed"
    path.write_bytes(content)
    with pytest.raises(DataError, match=r"x\.bed" + message):
        read_bed(path)


def test_truncated_gzip_is_one_error_naming_where_it_stopped(tmp_path):
    body = "".join(f"chr1\t{i}\t{i + 1}\n" for i in range(0, 200_000, 2)).encode()
    data = gzip.compress(body)
    path = tmp_path / "cut.bed.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.bed\.gz:\d+: truncated or corrupt gzip data"):
        read_bed(path)


def test_chromosome_naming_mismatch_gets_a_hint(tmp_path):
    assert "did you mean 'chr1'" in chrom_hint("1", {"chr1": 10})
    assert "did you mean 'MT'" in chrom_hint("chrM", {"MT": 10})
    assert chrom_hint("chr9", {"chr1": 10}) == ""
    path = tmp_path / "r.bed"
    path.write_text("6\t0\t100\n")
    with pytest.raises(DataError, match=r"r\.bed:1: chromosome '6' is not in .*did you mean 'chr6'"):
        read_regions(path, {"chr6": 1000}, "hg38.fa")


def test_enrichment_reads_its_own_tabix_track(tmp_path):
    """The `.stage1.bed.gz` that `boundaries` writes is a valid --boundaries input (it was a UnicodeDecodeError)."""
    from hnet_genomics.export.tracks import _write_tabix

    bed = tmp_path / "t.bed"
    bed.write_text(
        'track name="x"\n'
        + "".join(
            f"{CHROM}\t{s}\t{s + 3}\tc{i}\t500\t.\t{s}\t{s + 3}\t0,0,0\n" for i, s in enumerate(range(0, 3000, 3))
        )
    )
    _write_tabix(bed, tmp_path / "t.bed.gz")
    chunks = enrichment.read_bed(tmp_path / "t.bed.gz")
    assert np.array_equal(chunks[CHROM].starts, np.arange(0, 3000, 3))
