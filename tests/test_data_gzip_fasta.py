"""Plain-gzip FASTA (what UCSC and Ensembl serve) is converted once to a bgzip copy and reused, with a note."""

from __future__ import annotations

import gzip
import os

import pytest

from hnet_genomics.cli import main
from hnet_genomics.data import demo
from hnet_genomics.data.genome import Genome


@pytest.fixture
def plain_gzip(tmp_path):
    """80 kb of the embedded human region as one plain-gzip FASTA with 60-base lines."""
    seq = Genome(demo.HUMAN_FASTA).fetch("BA000025.2", 0, 80_000)
    text = b">chr6\n" + b"\n".join(seq[i : i + 60] for i in range(0, len(seq), 60)) + b"\n"
    path = tmp_path / "genomes" / "hla.fa.gz"
    path.parent.mkdir()
    path.write_bytes(gzip.compress(text))
    return path, seq


def test_gzip_fasta_is_converted_once_beside_it_and_reused(plain_gzip, capsys):
    path, seq = plain_gzip
    g = Genome(path)
    assert g.path == path.with_name("hla.fa.bgz") and g.compression == "bgzip"
    assert g.fetch("chr6", 12_345, 12_400) == seq[12_345:12_400]
    err = capsys.readouterr().err
    assert "is gzip, not bgzip" in err and "hla.fa.bgz (later runs reuse it)" in err
    stamp = g.path.stat().st_mtime_ns
    again = Genome(path)
    assert again.path == g.path and g.path.stat().st_mtime_ns == stamp and capsys.readouterr().err == ""
    os.utime(path)  # the source changed after the copy was made: convert again
    os.utime(g.path, (1, 1))
    Genome(path)
    assert "writing a bgzip copy once" in capsys.readouterr().err


def test_read_only_folder_puts_the_copy_in_the_cache_folder(plain_gzip, tmp_path, monkeypatch):
    from hnet_genomics.data import genome

    path, seq = plain_gzip
    monkeypatch.setenv("HNET_GENOMICS_CACHE", str(tmp_path / "cache"))
    real_access = os.access
    monkeypatch.setattr(genome.os, "access", lambda p, mode: False if p == path.parent else real_access(p, mode))
    g = Genome(path)
    assert g.path.parent == tmp_path / "cache" / "bgzip" and g.fetch("chr6", 0, 60) == seq[:60]
    assert sorted(p.name for p in path.parent.iterdir()) == ["hla.fa.gz"]  # nothing written beside the input


def test_pretrain_help_tells_the_truth_about_formats(capsys):
    with pytest.raises(SystemExit):
        main(["pretrain", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "plain gzip as UCSC and Ensembl serve it (converted once to a bgzip copy beside it)" in text


def test_commands_accept_a_gzip_fasta(plain_gzip, tmp_path):
    path, _ = plain_gzip
    assert main(["data", "sizes", "--fasta", str(path), "--out", str(tmp_path / "chrom.sizes")]) == 0
    assert (tmp_path / "chrom.sizes").read_text() == "chr6\t80000\n"
