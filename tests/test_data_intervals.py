"""Train / valid / test splits: Basenji split BED, held-out chromosomes, per-record fractions."""

import pytest

from hnet_genomics.config import DataConfig
from hnet_genomics.data import demo
from hnet_genomics.data.genome import Genome
from hnet_genomics.data.intervals import Interval, make_splits, read_split_bed, tile_intervals, write_split_bed
from hnet_genomics.errors import ConfigError, DataError

HUMAN = "BA000025.2"
SIZE = 2_229_817


@pytest.fixture(scope="module")
def human():
    return Genome(demo.HUMAN_FASTA)


@pytest.fixture(scope="module")
def two_chroms(tmp_path_factory):
    """A two-record genome of real sequence (HLA region and E. coli), written as plain FASTA."""
    h = Genome(demo.HUMAN_FASTA).fetch(HUMAN, 0, 300_000)
    e = Genome(demo.ECOLI_FASTA).fetch("K-12-MG1655", 0, 200_000)
    path = tmp_path_factory.mktemp("g") / "two.fa"
    path.write_bytes(
        b"".join(
            b">" + n + b"\n" + b"\n".join(s[i : i + 80] for i in range(0, len(s), 80)) + b"\n"
            for n, s in [(b"chrH", h), (b"chrE", e)]
        )
    )
    return Genome(path)


def write_bed(path, text):
    path.write_text(text)
    return path


def test_basenji_bed_is_read_unsorted_and_overlapping(human, tmp_path):
    bed = write_bed(
        tmp_path / "s.bed",
        f"# comment\n{HUMAN}\t200000\t331072\tvalid\n{HUMAN}\t0\t131072\ttrain\n"
        f"{HUMAN}\t100000\t231072\ttrain\n{HUMAN}\t2098745\t{SIZE}\ttest\n",
    )
    splits = read_split_bed(bed, human)
    assert splits == {
        "train": [Interval(HUMAN, 0, 131072), Interval(HUMAN, 100000, 231072)],
        "valid": [Interval(HUMAN, 200000, 331072)],
        "test": [Interval(HUMAN, 2098745, SIZE)],
    }


def test_split_bed_roundtrip(human, tmp_path):
    splits = make_splits(human, DataConfig())
    write_split_bed(splits, tmp_path / "out.bed")
    assert read_split_bed(tmp_path / "out.bed", human) == splits
    assert (tmp_path / "out.bed").read_text().splitlines()[0] == f"{HUMAN}\t0\t1895344\ttrain"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bed"]  # no temp file left behind


def test_bed_interval_past_chromosome_end(human, tmp_path):
    bed = write_bed(tmp_path / "s.bed", f"{HUMAN}\t0\t1000\ttrain\n{HUMAN}\t2229000\t2230000\ttest\n")
    with pytest.raises(DataError, match=r"s\.bed:2: interval BA000025\.2:2229000-2230000 runs past the end"):
        read_split_bed(bed, human)


def test_bed_chromosome_not_in_fasta(human, tmp_path):
    bed = write_bed(tmp_path / "s.bed", f"{HUMAN}\t0\t1000\ttrain\nchr9\t0\t1000\tvalid\n")
    with pytest.raises(DataError, match=r"s\.bed:2: chromosome 'chr9' is not in .*human_chr6p21_hla\.fa\.gz"):
        read_split_bed(bed, human)


def test_bed_unknown_split_value(human, tmp_path):
    bed = write_bed(tmp_path / "s.bed", f"{HUMAN}\t0\t1000\ttrain\n{HUMAN}\t1000\t2000\tvalidation\n")
    with pytest.raises(DataError, match=r"s\.bed:2: split column value 'validation' is not one of train, valid, test"):
        read_split_bed(bed, human)


@pytest.mark.parametrize(
    "line, message",
    [
        (f"{HUMAN}\t0\t1000", "a BED line needs 4 columns"),
        (f"{HUMAN}\t0\tten\ttrain", "start '0' and end 'ten' must be integers"),
        (f"{HUMAN}\t500\t500\ttrain", r"empty interval .*\(need 0 <= start < end"),
    ],
)
def test_malformed_bed_lines(human, tmp_path, line, message):
    bed = write_bed(tmp_path / "s.bed", f"{HUMAN}\t0\t10\ttrain\n{line}\n")
    with pytest.raises(DataError, match=rf"s\.bed:2: {message}"):
        read_split_bed(bed, human)


def test_fraction_split_holds_out_the_end_of_every_record(two_chroms):
    splits = make_splits(two_chroms, DataConfig(valid_fraction=0.1, test_fraction=0.2))
    assert splits == {
        "train": [Interval("chrH", 0, 210_000), Interval("chrE", 0, 140_000)],
        "valid": [Interval("chrH", 210_000, 240_000), Interval("chrE", 140_000, 160_000)],
        "test": [Interval("chrH", 240_000, 300_000), Interval("chrE", 160_000, 200_000)],
    }


def test_fraction_split_partitions_each_record_exactly(human):
    splits = make_splits(human, DataConfig())
    ivs = sorted(iv for v in splits.values() for iv in v)
    assert ivs[0].start == 0 and ivs[-1].end == SIZE
    assert all(a.end == b.start for a, b in zip(ivs, ivs[1:]))


def test_held_out_chromosomes(two_chroms):
    splits = make_splits(two_chroms, DataConfig(test_chroms=["chrE"]))
    assert splits == {"train": [Interval("chrH", 0, 300_000)], "valid": [], "test": [Interval("chrE", 0, 200_000)]}
    with pytest.raises(ConfigError, match="data.valid_chroms: 'chr9' is not a record"):
        make_splits(two_chroms, DataConfig(valid_chroms=["chr9"]))
    with pytest.raises(DataError, match="train split is empty"):
        make_splits(two_chroms, DataConfig(valid_chroms=["chrH"], test_chroms=["chrE"]))


def test_bed_takes_precedence_over_held_out_chromosomes(two_chroms, tmp_path):
    bed = write_bed(tmp_path / "s.bed", "chrE\t0\t5000\ttrain\nchrH\t0\t5000\ttest\n")
    splits = make_splits(two_chroms, DataConfig(test_chroms=["chrE"], intervals=str(bed)))
    assert splits["train"] == [Interval("chrE", 0, 5000)]


def test_bed_tiled_into_context_length_windows_clamped_at_chromosome_ends(two_chroms, tmp_path):
    bed = write_bed(tmp_path / "s.bed", "chrH\t0\t2500\ttrain\nchrE\t199_000\t200000\tvalid\n".replace("_", ""))
    splits = make_splits(two_chroms, DataConfig(), bed, seq_len=1000)
    assert splits["train"] == [Interval("chrH", 0, 1000), Interval("chrH", 1000, 2000), Interval("chrH", 1750, 2750)]
    assert splits["valid"] == [Interval("chrE", 199_000, 200_000)]
    assert tile_intervals([Interval("chrE", 199_990, 200_000)], 1000, two_chroms.sizes) == [
        Interval("chrE", 199_000, 200_000)
    ]
    assert tile_intervals([Interval("chrH", 0, 10)], 1000, two_chroms.sizes) == [Interval("chrH", 0, 1000)]


def test_window_longer_than_every_chromosome(two_chroms, tmp_path):
    bed = write_bed(tmp_path / "s.bed", "chrH\t0\t2500\ttrain\n")
    with pytest.raises(DataError, match=r"s\.bed: window length 400,000 is longer than every chromosome"):
        make_splits(two_chroms, DataConfig(), bed, seq_len=400_000)


def test_bad_fractions_are_config_errors(human):
    with pytest.raises(ConfigError, match="valid_fraction"):
        make_splits(human, DataConfig(valid_fraction=-0.1))
    with pytest.raises(ConfigError, match="leave some sequence"):
        make_splits(human, DataConfig(valid_fraction=0.5, test_fraction=0.5))
