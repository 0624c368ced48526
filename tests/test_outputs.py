"""The output-path policy every command calls (``hnet_genomics/outputs.py``): an output is never an input, by
name, symbolic link, hard link, derived file or folder; and a file is deleted only while it is the one written."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from hnet_genomics.errors import OutputError
from hnet_genomics.outputs import (
    check_paths,
    companions,
    file_record,
    output_file,
    output_folder,
    output_prefix,
    still_as_recorded,
)


@pytest.fixture
def ws(tmp_path):
    (tmp_path / "g.fa").write_text(">chr1\nACGT\n")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}\n")
    return tmp_path


def refused(inputs, outputs, message: str) -> None:
    with pytest.raises(OutputError) as e:
        check_paths(inputs, outputs)
    assert re.search(message, str(e.value)), str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "make_out,message",
    [
        (lambda ws: output_file(ws / "g.fa"), r"--out .*g\.fa: is the input --fasta .*g\.fa; an output may never"),
        (lambda ws: output_file(ws / "sub" / ".." / "g.fa"), r"is the input --fasta"),
        (lambda ws: output_file(ws / "x.npy", derived=[ws / "g.fa"]), r"writes .*g\.fa, which is the input --fasta"),
        (lambda ws: output_file(ws / "g.fa.fai"), r"is .*g\.fa\.fai, read with the input --fasta .*g\.fa"),
        (lambda ws: output_file(ws / "model" / "e.json"), r"lies inside the input --model .*model, a folder"),
        (lambda ws: output_folder(ws, files=["g.fa"]), r"writes .*g\.fa, which is the input --fasta"),
        (lambda ws: output_folder(ws, folders=["model"]), r"writes .*model, which holds the input --model .*model;"),
        (lambda ws: output_folder(ws / "model" / "sub"), r"lies inside the input --model"),
        (lambda ws: output_prefix(ws / "g", names=r"fa"), r"writes .*g\.fa, which is the input --fasta"),
        (lambda ws: output_prefix(ws / "model" / "t"), r"writes into the input --model"),
    ],
)
def test_an_output_that_is_or_holds_an_input_is_refused(ws, make_out, message):
    (ws / "sub").mkdir()
    refused({"--fasta": ws / "g.fa", "--model": ws / "model"}, [make_out(ws)], message)


def test_links_are_followed_to_the_input(ws):
    os.symlink(ws / "g.fa", ws / "link.json")
    refused({"--fasta": ws / "g.fa"}, [output_file(ws / "link.json")], r"link\.json: is the input --fasta")
    os.link(ws / "g.fa", ws / "hard.json")
    refused({"--fasta": ws / "g.fa"}, [output_file(ws / "hard.json")], r"hard\.json: is a hard link to the input")
    os.symlink(ws / "g.fa", ws / "P.stage1.bed")  # a link named like a track, given as an input
    refused({"--regions": ws / "P.stage1.bed"}, [output_prefix(ws / "P")], r"writes .*P\.stage1\.bed, which is")
    os.symlink(ws, ws / "same")  # the folder reached another way
    refused({"--fasta": ws / "g.fa"}, [output_file(ws / "same" / "g.fa")], r"is the input --fasta")


def test_what_is_not_an_input_is_allowed(ws):
    inputs = {"--fasta": ws / "g.fa", "--model": ws / "model", "--regions": None, "--runs": [ws / "model"]}
    check_paths(
        inputs,
        [
            output_file(ws / "g.json", derived=[ws / "g.tsv"]),  # beside the inputs, not one of them
            output_prefix(ws / "g", names=r"stage\d+\.bed"),  # the prefix of the FASTA's name, other names
            output_folder(ws / "out", files=["g.fa"]),  # the same name in another folder
        ],
    )


def test_every_output_is_still_checked_for_writability(ws):
    refused({}, [output_file(ws / "model")], r"--out .*model: is a folder, expected a file name")
    refused({}, [output_folder(ws / "g.fa" / "x", "--dest")], r"--dest .*g\.fa is a file, not a folder")
    refused({}, [output_prefix(ws / "model")], r"is a folder; --out is a file-name prefix")


def test_two_outputs_may_not_be_one_file(ws):
    refused(
        {},
        [output_file(ws / "a.npy", derived=[ws / "a.tsv"]), output_file(ws / "a.tsv", "--index")],
        r"--index .*a\.tsv: writes .*a\.tsv, which --out .*a\.npy writes too",
    )


def test_companions_are_the_indexes_and_the_bgzip_copy():
    assert [p.name for p in companions("g.fa.gz")] == [
        "g.fa.gz.fai",
        "g.fa.gz.gzi",
        "g.fa.gz.tbi",
        "g.fa.gz.csi",
        "g.fa.bgz",
        "g.fa.bgz.fai",
        "g.fa.bgz.gzi",
        "g.fa.bgz.tbi",
        "g.fa.bgz.csi",
    ]


def test_a_record_matches_only_the_file_that_was_written(tmp_path):
    f = tmp_path / "x.bw"
    f.write_bytes(b"ours")
    record = file_record(f)
    assert still_as_recorded(f, record)
    assert not still_as_recorded(f, None) and not still_as_recorded(tmp_path / "gone", record)
    f.unlink()
    f.write_bytes(b"mine")  # same size, written later: another file
    os.utime(f, ns=(record["mtime_ns"], record["mtime_ns"] + 1))
    assert not still_as_recorded(f, record)
    g = tmp_path / "y.bw"
    g.write_bytes(b"ours")
    os.utime(g, ns=(record["mtime_ns"], record["mtime_ns"]))
    f.unlink()
    os.symlink(g, f)  # a link to a file of the same size and time is not the file that was written
    assert not still_as_recorded(f, record)
    assert still_as_recorded(Path(g), record)
