"""Task readers: every supported layout yields the same labelled records; bad task files fail with file:line."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from hnet_genomics.data import demo
from hnet_genomics.data.labelled import read_labelled
from hnet_genomics.errors import DataError
from hnet_genomics.tasks.batching import fit_to_context, pad_batch
from hnet_genomics.tasks.labels import label_space


@pytest.fixture(scope="module")
def tfbs_sample():
    """24 real Oct4/Mafk sites, both classes, soft-masking preserved."""
    data = read_labelled(demo.TFBS_TRAIN, soft_mask="keep")
    pos = [i for i, lab in enumerate(data.labels) if lab == "1"][:12]
    neg = [i for i, lab in enumerate(data.labels) if lab == "0"][:12]
    return data.subset(pos + neg)


def _records(data):
    return sorted(zip(data.sequences, data.labels))


def test_csv_fasta_and_genomic_benchmarks_layouts_read_identical_records(tmp_path, tfbs_sample):
    csv_path = tmp_path / "task.csv"
    csv_path.write_text(
        "sequence,label,name\n"
        + "".join(
            f"{s.decode()},{lab},{n}\n"
            for s, lab, n in zip(tfbs_sample.sequences, tfbs_sample.labels, tfbs_sample.names)
        )
    )
    nt_path = tmp_path / "nt_task" / "train.fna"  # Nucleotide Transformer layout: >name|label
    nt_path.parent.mkdir()
    nt_path.write_text(
        "".join(
            f">{n}|{lab}\n{s[:80].decode()}\n{s[80:].decode()}\n"
            for s, lab, n in zip(tfbs_sample.sequences, tfbs_sample.labels, tfbs_sample.names)
        )
    )
    gz_path = tmp_path / "task.fa.gz"
    with gzip.open(gz_path, "wt") as fh:
        fh.write(
            "".join(
                f">{n} cell=ES label={lab}\n{s.decode()}\n"
                for s, lab, n in zip(tfbs_sample.sequences, tfbs_sample.labels, tfbs_sample.names)
            )
        )
    gb_dir = tmp_path / "gb_task" / "train"
    for i, (s, lab) in enumerate(zip(tfbs_sample.sequences, tfbs_sample.labels)):
        (gb_dir / lab).mkdir(parents=True, exist_ok=True)
        (gb_dir / lab / f"{i}.txt").write_bytes(s)

    expected = _records(read_labelled(csv_path))
    assert any(c in b"acgt" for s in tfbs_sample.sequences for c in s)  # the sample really is soft-masked
    assert all(s == s.upper() for s, _ in expected)
    for path in (nt_path, gz_path, gb_dir):
        assert _records(read_labelled(path)) == expected, path
    assert read_labelled(nt_path).names == tfbs_sample.names


def test_soft_masking_is_upper_cased_by_default_and_kept_on_request(tfbs_sample, tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(
        "sequence,label\n"
        + "".join(f"{s.decode()},{lab}\n" for s, lab in zip(tfbs_sample.sequences, tfbs_sample.labels))
    )
    kept = read_labelled(path, soft_mask="keep").sequences
    assert kept == tfbs_sample.sequences
    assert read_labelled(path).sequences == [s.upper() for s in kept]


def test_genomic_benchmarks_labels_follow_sorted_class_names_not_directory_order(tmp_path, tfbs_sample):
    split = tmp_path / "human_task" / "train"
    for cls in ("positive", "negative"):  # created in reverse alphabetical order on purpose
        (split / cls).mkdir(parents=True)
    for i, s in enumerate(tfbs_sample.sequences[:6]):
        (split / ("positive" if i % 2 else "negative") / f"{i}.txt").write_bytes(s + b"\n")
    data = read_labelled(split)
    space = label_space(data)
    assert space.classes == ["negative", "positive"]
    y = space.encode(data)
    assert [data.labels[i] for i in np.flatnonzero(y == 1)] == ["positive"] * 3


def test_integer_labels_sort_numerically():
    from hnet_genomics.data.labelled import LabelledSequences

    data = LabelledSequences([b"ACGT"] * 3, ["10", "2", "9"], ["a", "b", "c"], ["f:2", "f:3", "f:4"], "f")
    assert label_space(data).classes == ["2", "9", "10"]


def test_padding_is_right_aligned_with_a_mask_of_real_bases(tfbs_sample):
    seqs = [tfbs_sample.sequences[0][:50], tfbs_sample.sequences[1][:80]]
    ids, mask = pad_batch(seqs)
    assert ids.shape == (2, 80) and mask.sum(1).tolist() == [50, 80]
    assert bytes(ids[0, :50].tolist()) == seqs[0] and not mask[0, 50:].any()


@pytest.mark.parametrize(
    "body, message",
    [
        ("sequence,label\nACGTNNAC,1\nACG@TT,0\n", r"t\.csv:3: character '@' is not an IUPAC"),
        ("sequence,label\nACGTNNAC,1\n,0\n", r"t\.csv:3: empty sequence"),
        ("sequence,label\nACGTNNAC,1\nACGT,\n", r"t\.csv:3: empty label"),
        ("seq,label\nACGT,1\n", r"t\.csv:1: header .* lacks column"),
        ("sequence,label\n", r"t\.csv: no labelled sequences"),
    ],
)
def test_malformed_csv_rows_are_reported_by_file_and_line(tmp_path, body, message):
    path = tmp_path / "t.csv"
    path.write_text(body)
    with pytest.raises(DataError, match=message):
        read_labelled(path)


def test_fasta_header_without_label_is_reported(tmp_path):
    path = tmp_path / "t.fa"
    path.write_text(">site1|1\nACGT\n>site2\nACGT\n")
    with pytest.raises(DataError, match=r"t\.fa:3: FASTA header '>site2' carries no label"):
        read_labelled(path)


def test_test_label_unseen_in_training_and_single_class_training_set_are_errors(tmp_path, tfbs_sample):
    train, test = tmp_path / "train.csv", tmp_path / "test.csv"
    s = tfbs_sample.sequences
    train.write_text(f"sequence,label\n{s[0].decode()},oct4\n{s[1].decode()},mafk\n")
    test.write_text(f"sequence,label\n{s[2].decode()},oct4\n{s[3].decode()},ctcf\n")
    space = label_space(read_labelled(train))
    with pytest.raises(DataError, match=r"test\.csv:3: label 'ctcf' does not occur in the training set"):
        space.encode(read_labelled(test))
    train.write_text(f"sequence,label\n{s[0].decode()},oct4\n{s[1].decode()},oct4\n")
    with pytest.raises(DataError, match=r"train\.csv: every training sequence has label 'oct4'"):
        label_space(read_labelled(train))


def test_sequences_longer_than_the_context_error_or_truncate_with_warning(tfbs_sample):
    with pytest.raises(DataError, match=r"sequence of 200 bp is longer than the model context of 150 bp"):
        fit_to_context(tfbs_sample, 150, "error")
    with pytest.warns(UserWarning, match="truncating 24 sequence"):
        cut = fit_to_context(tfbs_sample, 150, "truncate")
    assert all(c == s[:150] for c, s in zip(cut.sequences, tfbs_sample.sequences))
    assert fit_to_context(tfbs_sample, 200, "error") is tfbs_sample


def test_regression_labels_must_be_numbers(tmp_path):
    path = tmp_path / "expr.csv"
    path.write_text("sequence,label\nACGTAC,0.5\nACGTTT,-1.25\nACGGGG,high\n")
    data = read_labelled(path)
    with pytest.raises(DataError, match=r"expr\.csv:4: regression label 'high' is not a number"):
        label_space(data, "regression")
    space = label_space(data.subset([0, 1]), "regression")
    assert space.num_outputs == 1 and space.encode(data.subset([0, 1])).tolist() == [0.5, -1.25]


def test_csv_with_a_byte_order_mark_and_crlf_reads_like_a_plain_one(tmp_path):
    """Excel's "CSV UTF-8" starts with a byte-order mark; it must not hide the 'sequence' column."""
    plain, bom = tmp_path / "plain.csv", tmp_path / "bom.csv"
    plain.write_text("sequence,label\nACGTACGT,0\nTTGACCAA,1\n")
    bom.write_bytes(b"\xef\xbb\xbfsequence,label\r\nACGTACGT,0\r\nTTGACCAA,1\r\n")
    assert _records(read_labelled(bom)) == _records(read_labelled(plain))


@pytest.mark.parametrize(
    "content,message",
    [
        (b"sequence,label\nACGT,0\nACGT,caf\xe9\n", r"t\.csv:3: byte 0xe9 is not UTF-8 text"),
        (
            gzip.compress(
                b"sequence,label\n"
                + b"".join(
                    np.random.default_rng(i).choice(list(b"ACGT"), 40).astype(np.uint8).tobytes() + b",1\n"
                    for i in range(2000)
                )
            )[:3000],
            r"t\.csv:\d+: truncated or corrupt gzip",
        ),
    ],
)
def test_undecodable_or_truncated_task_files_name_the_line(tmp_path, content, message):
    path = tmp_path / "t.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_labelled(path)
