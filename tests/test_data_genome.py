"""Genome access on real DNA: plain / bgzip / multi-record FASTA, index creation, and bad input."""

import gzip

import numpy as np
import pytest

from hnet_genomics.data import demo
from hnet_genomics.data.fasta import prepare_fasta
from hnet_genomics.data.genome import Genome
from hnet_genomics.errors import DataError

HUMAN = "BA000025.2"


@pytest.fixture(scope="module")
def human():
    return Genome(demo.HUMAN_FASTA)


def wrap(seq: bytes, width: int = 60, eol: bytes = b"\n") -> bytes:
    return b"".join(seq[i : i + width] + eol for i in range(0, len(seq), width))


@pytest.fixture(scope="module")
def records(human):
    """Three real pieces of the two demo genomes, as (name, bases)."""
    ecoli = Genome(demo.ECOLI_FASTA)
    return [
        ("hla_a", human.fetch(HUMAN, 100_000, 103_000)),
        ("ecoli_ori", ecoli.fetch("K-12-MG1655", 3_923_000, 3_925_500)),
        ("hla_b", human.fetch(HUMAN, 2_000_000, 2_000_777)),
    ]


def write_fasta(path, records, width=60, eol=b"\n"):
    path.write_bytes(b"".join(b">" + n.encode() + b" real DNA" + eol + wrap(s, width, eol) for n, s in records))
    return path


def test_demo_genomes_have_the_documented_records_and_sizes(human):
    assert human.sizes == {HUMAN: 2_229_817}
    assert Genome(demo.ECOLI_FASTA).sizes == {"K-12-MG1655": 4_639_675}
    assert human.compression == "bgzip"


def test_fetch_matches_the_original_plain_text(human, tmp_path):
    plain = tmp_path / "hla.fa"
    with gzip.open(demo.HUMAN_FASTA) as src:
        plain.write_bytes(src.read())
    text = b"".join(plain.read_bytes().split(b"\n")[1:])
    g = Genome(plain)  # plain FASTA, .fai created on first use
    assert (tmp_path / "hla.fa.fai").exists()
    for start, end in [(0, 10), (79, 81), (80, 160), (1_234_567, 1_242_759), (2_229_800, 2_229_817), (5, 5)]:
        assert g.fetch(HUMAN, start, end) == text[start:end] == human.fetch(HUMAN, start, end)
    rng = np.random.default_rng(0)
    for _ in range(200):  # many crossing 64 KiB bgzip block boundaries
        start = int(rng.integers(0, len(text) - 1))
        end = min(len(text), start + int(rng.integers(1, 150_000)))
        assert human.fetch(HUMAN, start, end) == text[start:end] == g.fetch(HUMAN, start, end)


def test_bgzip_block_cache_eviction_does_not_change_reads(human):
    from hnet_genomics.data.bgzf import BgzfReader

    small = BgzfReader(demo.HUMAN_FASTA, cache_bytes=100_000)  # one or two blocks
    rng = np.random.default_rng(1)
    for _ in range(50):
        start = int(rng.integers(0, 2_000_000))
        assert small.read(start, start + 70_000) == BgzfReader(demo.HUMAN_FASTA).read(start, start + 70_000)
    assert len(small._cache) <= 2


def test_last_line_without_newline_and_record_ending_on_a_full_line(records, tmp_path):
    seq = records[0][1][:120]  # exactly two 60-base lines
    path = tmp_path / "x.fa"
    path.write_bytes(b">full\n" + wrap(seq) + b">open\n" + seq[:60] + b"\n" + seq[60:100])
    g = Genome(path)
    assert g.fetch("full", 0, 120) == seq and g.fetch("full", 60, 120) == seq[60:]
    assert g.fetch("open", 0, 100) == seq[:100] and g.fetch("open", 99, 100) == seq[99:100]


def test_multi_record_file_keeps_order_sizes_and_random_access(records, tmp_path):
    g = Genome(write_fasta(tmp_path / "multi.fa", records))
    assert g.sizes == {n: len(s) for n, s in records}
    assert g.records() == ["hla_a", "ecoli_ori", "hla_b"]
    for name, seq in records:
        assert g.fetch(name, 0, len(seq)) == seq
        assert g.fetch(name, 17, 1017 if len(seq) > 1017 else len(seq)) == seq[17:1017]


def test_bgzip_copy_builds_missing_index(records, tmp_path):
    prepare_fasta(write_fasta(tmp_path / "multi.fa", records), tmp_path / "multi.fa.gz")
    for suffix in (".fai", ".gzi"):
        (tmp_path / f"multi.fa.gz{suffix}").unlink()
    g = Genome(tmp_path / "multi.fa.gz")
    assert (tmp_path / "multi.fa.gz.gzi").exists()
    assert g.fetch("ecoli_ori", 100, 200) == records[1][1][100:200]


def test_windows_line_endings_are_accepted(records, tmp_path):
    g = Genome(write_fasta(tmp_path / "crlf.fa", records, eol=b"\r\n"))
    assert g.sizes == {n: len(s) for n, s in records}
    assert g.fetch("hla_b", 50, 250) == records[2][1][50:250]
    assert g.validate() == g.sizes


def test_soft_masked_case_is_returned_as_stored(records, tmp_path):
    name, seq = records[0]
    mixed = seq[:100] + seq[100:300].lower() + seq[300:]
    g = Genome(write_fasta(tmp_path / "soft.fa", [(name, mixed)]))
    assert g.fetch(name, 90, 310) == mixed[90:310]


def test_genome_is_picklable_for_dataloader_workers(human):
    import pickle

    clone = pickle.loads(pickle.dumps(human))
    assert clone.fetch(HUMAN, 5000, 5100) == human.fetch(HUMAN, 5000, 5100)


def test_fetch_outside_a_record_or_unknown_record_is_an_error(human):
    with pytest.raises(DataError, match="outside the record"):
        human.fetch(HUMAN, 2_229_800, 2_229_818)
    with pytest.raises(DataError, match="no record named 'chr1'"):
        human.fetch("chr1", 0, 10)


# --- bad input: one clear line naming the file and the line or record -------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.fa: no such file"):
        Genome(tmp_path / "nope.fa")


def test_empty_file(tmp_path):
    (tmp_path / "empty.fa").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.fa: empty file"):
        Genome(tmp_path / "empty.fa")


def test_binary_file(tmp_path):
    (tmp_path / "blob.fa").write_bytes(bytes(range(256)) * 4)
    with pytest.raises(DataError, match=r"blob\.fa:1: binary file"):
        Genome(tmp_path / "blob.fa")


def test_html_error_page(tmp_path):
    (tmp_path / "hg38.fa").write_text("<!DOCTYPE html>\n<html><body>404 Not Found</body></html>\n")
    with pytest.raises(DataError, match=r"hg38\.fa:1: looks like HTML"):
        Genome(tmp_path / "hg38.fa")


def test_fastq_file(records, tmp_path):
    seq = records[0][1][:100]
    (tmp_path / "reads.fa").write_bytes(b"@read1\n" + seq + b"\n+\n" + b"I" * 100 + b"\n")
    with pytest.raises(DataError, match=r"reads\.fa:1: looks like FASTQ"):
        Genome(tmp_path / "reads.fa")


def test_csv_is_not_fasta(tmp_path):
    with gzip.open(demo.TFBS_TEST) as f:
        (tmp_path / "tfbs.fa").write_bytes(f.read())
    with pytest.raises(DataError, match=r"tfbs\.fa:1: not FASTA"):
        Genome(tmp_path / "tfbs.fa")


def test_header_without_sequence_names_its_line(records, tmp_path):
    path = tmp_path / "hollow.fa"
    path.write_bytes(b">first\n" + wrap(records[0][1][:120]) + b">hollow\n>third\n" + wrap(records[1][1][:60]))
    with pytest.raises(DataError, match=r"hollow\.fa:4: header '>hollow' has no sequence"):
        Genome(path)


def test_header_without_sequence_at_end_of_file(records, tmp_path):
    path = tmp_path / "tail.fa"
    path.write_bytes(b">first\n" + wrap(records[0][1][:120]) + b">last\n")
    with pytest.raises(DataError, match=r"tail\.fa:4: header '>last' has no sequence"):
        Genome(path)


def test_character_outside_iupac_names_line(records, tmp_path):
    seq = bytearray(records[0][1][:600])
    seq[250] = ord("@")
    path = write_fasta(tmp_path / "bad.fa", [("x", bytes(seq))])
    with pytest.raises(DataError, match=r"bad\.fa:6: character '@' is not an IUPAC nucleotide code"):
        Genome(path)


def test_character_outside_iupac_deep_in_file_is_found_by_validate_or_fetch(records, tmp_path):
    from hnet_genomics.config import DataConfig
    from hnet_genomics.data.encoding import encode_window

    seq = bytearray(records[0][1] * 40)  # 120 kb: beyond the cheap header check
    seq[100_001] = ord("J")
    g = Genome(write_fasta(tmp_path / "deep.fa", [("x", bytes(seq))]))
    with pytest.raises(DataError, match=r"deep\.fa:1668: character 'J'"):
        g.validate()
    with pytest.raises(DataError, match=r"deep\.fa: x:100002: character 'J'"):
        encode_window(g.fetch("x", 100_000, 100_010), DataConfig(), str(g.path), "x", 100_000)


def test_truncated_gzip(records, tmp_path):
    data = gzip.compress(b">x\n" + wrap(records[0][1] * 30))
    (tmp_path / "cut.fa.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.fa\.gz.*truncated or corrupt gzip"):
        prepare_fasta(tmp_path / "cut.fa.gz", tmp_path / "out.fa.gz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.fa.gz"]


def test_truncated_bgzip(tmp_path):
    data = demo.HUMAN_FASTA.read_bytes()
    (tmp_path / "cut.fa.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.fa\.gz: truncated bgzip"):
        Genome(tmp_path / "cut.fa.gz")
    (tmp_path / "tiny.fa.gz").write_bytes(data[:3000])  # cut inside the first block
    with pytest.raises(DataError, match=r"tiny\.fa\.gz: truncated or corrupt gzip"):
        Genome(tmp_path / "tiny.fa.gz")


def test_plain_gzip_is_read_through_a_bgzip_copy(records, tmp_path):
    (tmp_path / "x.fa.gz").write_bytes(gzip.compress(b">x\n" + wrap(records[0][1])))
    g = Genome(tmp_path / "x.fa.gz")  # more in test_data_gzip_fasta.py
    assert g.path == tmp_path / "x.fa.bgz" and g.fetch("x", 0, 100) == records[0][1][:100]


def test_unequal_line_lengths_point_to_prepare(records, tmp_path):
    seq = records[0][1]
    (tmp_path / "ragged.fa").write_bytes(b">x\n" + seq[:60] + b"\n" + seq[60:100] + b"\n" + seq[100:200] + b"\n")
    with pytest.raises(DataError, match=r"ragged\.fa:3: line shorter than the record's others.*data prepare"):
        Genome(tmp_path / "ragged.fa")


def test_prepare_rewraps_ragged_crlf_input_into_an_indexed_bgzip_copy(records, tmp_path):
    seq = records[0][1]
    src = tmp_path / "ragged.fa"
    src.write_bytes(b">x desc\r\n" + seq[:60] + b"\r\n" + seq[60:100] + b"\r\n\r\n" + seq[100:] + b"\r\n")
    sizes = prepare_fasta(src, tmp_path / "clean.fa.gz", line_width=50)
    assert sizes == {"x": len(seq)}
    g = Genome(tmp_path / "clean.fa.gz")
    assert g.fetch("x", 0, len(seq)) == seq
    assert g.validate() == sizes
