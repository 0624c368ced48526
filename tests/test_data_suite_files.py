"""Each suite's own on-disk layout, read into the same labelled sequences: class folders, FASTA, CSV, Parquet."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from suite_fixtures import write_genomic_benchmarks_task, write_nt_task

from hnet_genomics.data.labelled import read_labelled
from hnet_genomics.data.suite_files import read_split, split_path, task_present
from hnet_genomics.errors import DataError


def test_genomic_benchmarks_task_reads_labels_from_class_folders(tmp_path):
    task = write_genomic_benchmarks_task(tmp_path, "human_ensembl_regulatory", ["enhancer", "ocr", "promoter"])
    train = read_split(task, "train", "class-folders")
    test = read_split(task, "test", "class-folders")
    assert len(train) == 48 and len(test) == 16 and set(train.labels) == {"enhancer", "ocr", "promoter"}
    # class k carries motif k: the files really hold the labels the folders say
    assert all((b"GGGCGGGGCC" in s) == (lab == "promoter") for s, lab in zip(train.sequences, train.labels))
    assert train.names[0].startswith("enhancer/") and train.origins[0].endswith(".txt:1")
    assert task_present(task, "class-folders") and not task_present(task, "split-files")


@pytest.mark.parametrize("fmt", ["fna", "csv", "parquet"])
def test_nucleotide_transformer_task_reads_the_same_records_from_fasta_csv_and_parquet(tmp_path, fmt):
    reference = read_split(write_nt_task(tmp_path / "fna", "H3"), "train", "split-files")
    task = write_nt_task(tmp_path / fmt, "H3", fmt=fmt)
    train = read_split(task, "train", "split-files")
    assert train.sequences == reference.sequences and train.labels == reference.labels
    assert train.names == reference.names
    assert split_path(task, "test", "split-files").name.startswith("test.")


def test_hub_parquet_shards_of_a_split_are_read_in_order(tmp_path):
    task = write_nt_task(tmp_path, "H4", fmt="parquet")
    whole = read_split(task, "train", "split-files")
    (task / "train").mkdir()
    table = pq.read_table(task / "train.parquet")
    pq.write_table(table.slice(0, 20), task / "train" / "0000.parquet")
    pq.write_table(table.slice(20), task / "train" / "0001.parquet")
    (task / "train.parquet").unlink()
    shards = read_split(task, "train", "split-files")
    assert shards.sequences == whole.sequences and shards.labels == whole.labels


def test_a_split_given_twice_or_missing_is_named(tmp_path):
    task = write_nt_task(tmp_path, "H3")
    (task / "train.csv").write_text("sequence,label\nACGT,0\n")
    with pytest.raises(DataError, match=r"H3: train split found twice \(train\.fna, train\.csv\)"):
        read_split(task, "train", "split-files")
    (task / "test.fna").unlink()
    with pytest.raises(DataError, match="H3: no test split"):
        read_split(task, "test", "split-files")
    with pytest.raises(DataError, match=r"nowhere/train: no such folder \(a Genomic Benchmarks task holds"):
        read_split(tmp_path / "nowhere", "train", "class-folders")


def test_parquet_errors_name_the_file_and_row(tmp_path):
    pq.write_table(pa.table({"sequence": ["ACGT", "ACXT"], "label": [0, 1]}), tmp_path / "bad.parquet")
    with pytest.raises(DataError, match=r"bad\.parquet row 2: character 'X' is not an IUPAC"):
        read_labelled(tmp_path / "bad.parquet")
    pq.write_table(pa.table({"seq": ["ACGT"], "label": [0]}), tmp_path / "cols.parquet")
    with pytest.raises(DataError, match=r"cols\.parquet: columns \['seq', 'label'\] lack \['sequence'\]"):
        read_labelled(tmp_path / "cols.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match=r"junk\.parquet: not a readable Parquet file"):
        read_labelled(tmp_path / "junk.parquet")


def test_a_fasta_label_after_the_last_bar_is_read_even_when_the_name_has_spaces(tmp_path):
    (tmp_path / "t.fna").write_text(">seq1|1\nACGT\n>chr2 100 200|0\nGGCC\n>s3|2 a note\nTTAA\n")
    data = read_labelled(tmp_path / "t.fna")
    assert data.labels == ["1", "0", "2"] and data.names == ["seq1", "chr2 100 200", "s3"]
