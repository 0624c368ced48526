"""Downloading a suite's task with the network replaced: the suites' own packages are swapped for local stand-ins
that behave as the real ones do (write the task's files, or fail), so the code around them runs for real."""

from __future__ import annotations

import sys

import pytest
from suite_fixtures import fake_genomic_benchmarks, fake_hub, write_genomic_benchmarks_task, write_nt_task

from hnet_genomics.data.suite_fetch import fetch_genomic_benchmarks_task, fetch_hub_task
from hnet_genomics.data.suite_files import read_split, task_present
from hnet_genomics.errors import ConfigError, DataError


def test_genomic_benchmarks_task_lands_whole_in_the_class_folder_layout(tmp_path, monkeypatch):
    source = write_genomic_benchmarks_task(tmp_path / "cloud", "human_nontata_promoters", ["negative", "positive"])
    calls: list = []
    fake_genomic_benchmarks(monkeypatch, source, calls)
    dest = tmp_path / "suite" / "human_nontata_promoters"
    assert fetch_genomic_benchmarks_task("human_nontata_promoters", 0, dest) == dest
    assert calls == [("human_nontata_promoters", 0, True)]
    assert task_present(dest, "class-folders") and sorted(p.name for p in dest.iterdir()) == ["test", "train"]
    assert (
        read_split(dest, "train", "class-folders").sequences == read_split(source, "train", "class-folders").sequences
    )


def test_a_failed_download_leaves_nothing_and_says_why(tmp_path, monkeypatch):
    source = write_genomic_benchmarks_task(tmp_path / "cloud", "human_enhancers_cohn", ["negative", "positive"])
    fake_genomic_benchmarks(monkeypatch, source, [], fail=True)
    dest = tmp_path / "suite" / "human_enhancers_cohn"
    with pytest.raises(DataError, match="human_enhancers_cohn: download failed .ConnectionError: network is unreach"):
        fetch_genomic_benchmarks_task("human_enhancers_cohn", 0, dest)
    assert not (tmp_path / "suite").exists()  # no partial task, no temporary, no empty parent


def test_hub_task_files_come_from_the_pinned_revision(tmp_path, monkeypatch):
    write_nt_task(tmp_path / "hub", "promoter_tata")
    calls: list = []
    fake_hub(monkeypatch, tmp_path / "hub", calls)
    dest = tmp_path / "suite" / "promoter_tata"
    fetch_hub_task("InstaDeepAI/nt", "a" * 40, "promoter_tata", ["train.fna", "test.fna"], dest)
    assert calls == [
        ("InstaDeepAI/nt", "promoter_tata/train.fna", "dataset", "a" * 40),
        ("InstaDeepAI/nt", "promoter_tata/test.fna", "dataset", "a" * 40),
    ]
    assert (dest / "train.fna").read_bytes() == (tmp_path / "hub" / "promoter_tata" / "train.fna").read_bytes()
    missing = tmp_path / "suite" / "H3"
    with pytest.raises(DataError, match=r"InstaDeepAI/nt@aaaaaaaaaaaa H3/train\.fna: download failed"):
        fetch_hub_task("InstaDeepAI/nt", "a" * 40, "H3", ["train.fna", "test.fna"], missing)
    assert not missing.exists()


def test_without_the_extra_the_error_names_it_and_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "genomic_benchmarks", None)  # import fails as when the package is absent
    monkeypatch.setitem(sys.modules, "genomic_benchmarks.loc2seq", None)
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(ConfigError, match=r"genomic-benchmarks package \(pip install 'hnet-genomics\[benchmarks\]'\)"):
        fetch_genomic_benchmarks_task("demo_human_or_worm", 0, tmp_path / "a")
    with pytest.raises(ConfigError, match=r"huggingface_hub package \(pip install 'hnet-genomics\[benchmarks\]'\)"):
        fetch_hub_task("r", "b" * 40, "H3", ["train.fna"], tmp_path / "b")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_holding_part_of_a_task_is_not_overwritten(tmp_path):
    dest = tmp_path / "H3"
    dest.mkdir()
    (dest / "train.fna").write_text(">a|0\nACGT\n")
    with pytest.raises(DataError, match="H3: exists but does not hold both splits"):
        fetch_hub_task("r", "c" * 40, "H3", ["train.fna", "test.fna"], dest)
    assert (dest / "train.fna").read_text() == ">a|0\nACGT\n"
