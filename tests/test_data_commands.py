"""`hnet-genomics data ...` end to end on real DNA, HG38 acquisition through file:// URLs included."""

import gzip
import hashlib
import subprocess
import sys

import pytest

from hnet_genomics.cli import main
from hnet_genomics.data import demo
from hnet_genomics.data.genome import Genome
from hnet_genomics.data.intervals import Interval, read_split_bed

HUMAN = "BA000025.2"


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    """A tiny UCSC/Basenji-style mirror: plain-gzip FASTA with two real records, md5sum.txt, split BED."""
    root = tmp_path_factory.mktemp("mirror")
    h = Genome(demo.HUMAN_FASTA).fetch(HUMAN, 0, 60_000)
    e = Genome(demo.ECOLI_FASTA).fetch("K-12-MG1655", 0, 40_000)
    text = b"".join(
        b">" + n + b"\n" + b"\n".join(s[i : i + 50] for i in range(0, len(s), 50)) + b"\n"
        for n, s in [(b"chr6", h.lower()[:5000] + h[5000:]), (b"chrE", e)]
    )
    data = gzip.compress(text)
    for name in ("hg38.fa.gz", "hg38.ml.fa.gz"):
        (root / name).write_bytes(data)
    (root / "md5sum.txt").write_text(f"{hashlib.md5(data).hexdigest()}  hg38.fa.gz\n0123  hg38.2bit\n")
    (root / "sequences_human.bed").write_text(
        "chr6\t0\t40000\ttrain\nchrE\t0\t20000\tvalid\nchrE\t20000\t40000\ttest\n"
    )
    return root, text


def test_fetch_hg38_ucsc_verifies_md5_bgzips_and_indexes(mirror, tmp_path, capsys):
    root, text = mirror
    assert main(["data", "fetch-hg38", "--dest", str(tmp_path), "--base-url", root.as_uri()]) == 0
    g = Genome(tmp_path / "hg38.fa.gz")
    assert g.compression == "bgzip" and g.sizes == {"chr6": 60_000, "chrE": 40_000}
    assert g.fetch("chr6", 4_990, 5_010) == text.split(b"\n")[100][40:] + text.split(b"\n")[101][:10]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hg38.fa.gz", "hg38.fa.gz.fai", "hg38.fa.gz.gzi"]
    assert "hg38.fa.gz" in capsys.readouterr().out
    assert main(["data", "fetch-hg38", "--dest", str(tmp_path), "--base-url", "file:///nonexistent"]) == 0  # done


def test_fetch_hg38_basenji_brings_the_split_bed(mirror, tmp_path):
    root, _ = mirror
    assert (
        main(["data", "fetch-hg38", "--dest", str(tmp_path), "--source", "basenji", "--base-url", root.as_uri()]) == 0
    )
    splits = read_split_bed(tmp_path / "sequences_human.bed", Genome(tmp_path / "hg38.ml.fa.gz"))
    assert splits["valid"] == [Interval("chrE", 0, 20_000)]


def test_fetch_hg38_checksum_mismatch_writes_nothing(mirror, tmp_path, capsys):
    root, _ = mirror
    assert main(["data", "fetch-hg38", "--dest", str(tmp_path), "--base-url", root.as_uri(), "--md5", "0" * 32]) == 2
    assert "checksum mismatch" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_fetch_hg38_unreachable_mirror(tmp_path, capsys):
    dest = tmp_path / "hg38"
    assert main(["data", "fetch-hg38", "--dest", str(dest), "--base-url", (tmp_path / "none").as_uri()]) == 2
    err = capsys.readouterr().err.strip()  # the checksum is looked up first: no download is wasted
    assert err.startswith("hnet-genomics: error: file://") and "md5sum.txt: cannot read the published checksums" in err
    assert err.endswith("give the expected md5 of hg38.fa.gz with --md5") and "\n" not in err
    assert (
        main(["data", "fetch-hg38", "--dest", str(dest), "--base-url", (tmp_path / "none").as_uri(), "--md5", "0" * 32])
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert "hg38.fa.gz: download failed" in err and "\n" not in err
    assert list(tmp_path.iterdir()) == []  # no empty --dest left behind


def test_prepare_sizes_and_split_commands(mirror, tmp_path):
    root, _ = mirror
    out = tmp_path / "g.fa.gz"
    assert main(["data", "prepare", "--fasta", str(root / "hg38.fa.gz"), "--out", str(out)]) == 0
    assert main(["data", "prepare", "--fasta", str(out), "--out", str(tmp_path / "again.fa.gz")]) == 0  # bgzip in
    assert Genome(tmp_path / "again.fa.gz").fetch("chrE", 0, 40_000) == Genome(out).fetch("chrE", 0, 40_000)
    assert main(["data", "sizes", "--fasta", str(out), "--out", str(tmp_path / "chrom.sizes")]) == 0
    assert (tmp_path / "chrom.sizes").read_text() == "chr6\t60000\nchrE\t40000\n"
    assert (
        main(
            [
                "data",
                "split",
                "--fasta",
                str(out),
                "--set",
                "data.test_chroms=[chrE]",
                "--out",
                str(tmp_path / "held_out.bed"),
            ]
        )
        == 0
    )
    assert (tmp_path / "held_out.bed").read_text() == "chr6\t0\t60000\ttrain\nchrE\t0\t40000\ttest\n"
    assert (
        main(
            [
                "data",
                "split",
                "--fasta",
                str(out),
                "--intervals",
                str(root / "sequences_human.bed"),
                "--out",
                str(tmp_path / "basenji.bed"),
            ]
        )
        == 0
    )
    assert (tmp_path / "basenji.bed").read_text() == (root / "sequences_human.bed").read_text()


def test_split_with_a_shipped_config_name(tmp_path):
    from hnet_genomics.config import available_configs

    names = [n for n in available_configs() if n.startswith("dna/")]
    if not names:
        pytest.skip("no shipped DNA config in this checkout yet")
    assert (
        main(
            [
                "data",
                "split",
                "--fasta",
                str(demo.HUMAN_FASTA),
                "--config",
                names[0],
                "--set",
                "data.valid_fraction=0.2",
                "--out",
                str(tmp_path / "s.bed"),
            ]
        )
        == 0
    )
    splits = read_split_bed(tmp_path / "s.bed", Genome(demo.HUMAN_FASTA))
    assert splits["valid"][0].end - splits["valid"][0].start == round(2_229_817 * 0.2)


def test_bad_input_through_the_cli_is_one_line_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "reads.fq").write_text("@r1\nACGT\n+\nIIII\n")
    assert main(["data", "prepare", "--fasta", str(tmp_path / "reads.fq"), "--out", str(tmp_path / "o.fa.gz")]) == 2
    assert main(["data", "sizes", "--fasta", str(tmp_path / "none.fa"), "--out", str(tmp_path / "s")]) == 2
    (tmp_path / "s.bed").write_text(f"{HUMAN}\t0\t100\ttrain\n{HUMAN}\t100\t200\tholdout\n")
    assert (
        main(
            [
                "data",
                "split",
                "--fasta",
                str(demo.HUMAN_FASTA),
                "--intervals",
                str(tmp_path / "s.bed"),
                "--out",
                str(tmp_path / "o.bed"),
            ]
        )
        == 2
    )
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and all(line.startswith("hnet-genomics: error: ") for line in lines)
    assert "reads.fq:1: looks like FASTQ" in lines[0]
    assert "none.fa: no such file" in lines[1]
    assert "s.bed:2: split column value 'holdout'" in lines[2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reads.fq", "s.bed"]


def test_error_exit_code_from_a_real_process(tmp_path):
    (tmp_path / "page.fa").write_text("<html><body>Not Found</body></html>\n")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hnet_genomics.cli",
            "data",
            "prepare",
            "--fasta",
            str(tmp_path / "page.fa"),
            "--out",
            str(tmp_path / "o.fa.gz"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith("page.fa:1: looks like HTML/XML, not FASTA (a failed download?)")
    assert not (tmp_path / "o.fa.gz").exists()


def test_prepare_demo_writes_the_embedded_genome(tmp_path):
    from hnet_genomics.cli import main
    from hnet_genomics.data.genome import Genome

    out = tmp_path / "genome.fa.gz"
    assert main(["data", "prepare", "--demo", "human", "--out", str(out)]) == 0
    g = Genome(out)
    assert g.sizes == {"BA000025.2": 2_229_817}
    assert g.fetch("BA000025.2", 0, 10) == b"GATCTCCAGA"


class _FlakyMirror:
    """A local HTTP mirror with range requests whose first transfer of the genome breaks off half-way."""

    def __init__(self, root):
        import http.server
        import threading

        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                path = root / self.path.lstrip("/")
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                start = int(self.headers["Range"].split("=")[1].split("-")[0]) if self.headers["Range"] else 0
                mirror.ranges.append(start)
                self.send_response(206 if start else 200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if path.name.endswith(".fa.gz") and mirror.break_next:
                    mirror.break_next = False
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(2)  # the connection drops mid-transfer
                    return
                self.wfile.write(body)

        self.ranges, self.break_next = [], True
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"


def test_fetch_hg38_resumes_an_interrupted_download(mirror, tmp_path, capsys):
    root, text = mirror
    server = _FlakyMirror(root)
    try:
        dest = tmp_path / "hg38"
        assert main(["data", "fetch-hg38", "--dest", str(dest), "--base-url", server.url, "--timeout", "10"]) == 2
        err = capsys.readouterr().err.strip()
        assert "download" in err and "run the same command again to resume" in err and "\n" not in err, err
        part = dest / ".hg38.fa.gz.part"
        arrived = part.stat().st_size
        assert 0 < arrived < (root / "hg38.fa.gz").stat().st_size  # what arrived is kept
        assert main(["data", "fetch-hg38", "--dest", str(dest), "--base-url", server.url]) == 0
        assert server.ranges[-1] == arrived  # the second run asked only for the rest
        assert Genome(dest / "hg38.fa.gz").sizes == {"chr6": 60_000, "chrE": 40_000}  # md5 checked over both parts
        assert sorted(p.name for p in dest.iterdir()) == ["hg38.fa.gz", "hg38.fa.gz.fai", "hg38.fa.gz.gzi"]
    finally:
        server.server.shutdown()
