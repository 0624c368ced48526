"""Download HG38 and turn it into a random-access genome (bgzip + faidx), with checksums.

Two sources: UCSC's ``hg38.fa.gz`` (checksums published in ``md5sum.txt`` beside it) and the Basenji
``hg38.ml.fa.gz`` + ``sequences_human.bed`` split file that HyenaDNA and Caduceus pretrain on (no published
checksum: the gzip CRC of every member is still verified while re-compressing). Any ``base_url`` that
urllib can open works, ``file://`` included, which is how mirrors and the tests use it.
"""

from __future__ import annotations

import hashlib
import re
import urllib.error
import urllib.request
from pathlib import Path

from hnet_genomics.atomic import commit, output_dir
from hnet_genomics.data.fasta import prepare_fasta
from hnet_genomics.data.genome import Genome
from hnet_genomics.data.intervals import read_split_bed
from hnet_genomics.errors import ConfigError, DataError

SOURCES = {
    "ucsc": ("https://hgdownload.soe.ucsc.edu/goldenPath/hg38/bigZips/", "hg38.fa.gz", None),
    "basenji": ("https://storage.googleapis.com/basenji_barnyard2/", "hg38.ml.fa.gz", "sequences_human.bed"),
}


def _urlopen(url: str, timeout: float, start: int = 0):
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    return urllib.request.urlopen(request, timeout=timeout)


def _reason(e: Exception) -> str:
    return str(getattr(e, "reason", None) or e)


def _download(url: str, dest: Path, timeout: float = 60.0, progress: bool = False) -> str:
    """Stream ``url`` to ``dest``, resuming a partial ``dest`` left by an interrupted run; returns the md5 of the
    whole file. An interrupted transfer keeps what arrived (the next run continues from there)."""
    from tqdm import tqdm

    md5 = hashlib.md5()
    have = dest.stat().st_size if dest.exists() else 0
    if have:
        with open(dest, "rb") as f:
            while chunk := f.read(1 << 22):
                md5.update(chunk)
    try:
        response = _urlopen(url, timeout, have)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # range not satisfiable: the earlier run had fetched everything
            return md5.hexdigest()
        raise DataError(f"{url}: download failed ({_reason(e)})") from None
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise DataError(f"{url}: download failed ({_reason(e)})") from None
    with response:
        if have and getattr(response, "status", None) != 206:  # the server ignores ranges: start over
            have, md5 = 0, hashlib.md5()
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        bar = tqdm(
            total=total,
            initial=have,
            unit="B",
            unit_scale=True,
            desc=f"download {dest.name}",
            disable=not progress,
            dynamic_ncols=True,
        )
        received = have
        try:
            with bar, open(dest, "ab" if have else "wb") as out:
                while chunk := response.read(1 << 20):
                    md5.update(chunk)
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        except (urllib.error.URLError, OSError, ValueError) as e:
            of = f" of {total:,}" if total else ""
            raise DataError(
                f"{url}: download interrupted at {received:,}{of} bytes ({_reason(e)}); run the same "
                f"command again to resume"
            ) from None
    if total is not None and received < total:
        raise DataError(
            f"{url}: download ended early at {received:,} of {total:,} bytes; run the same command again to resume"
        )
    return md5.hexdigest()


def _published_md5(base_url: str, name: str, timeout: float) -> str:
    url = base_url + "md5sum.txt"
    try:
        with _urlopen(url, timeout) as response:
            text = response.read().decode("utf-8", "replace")
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise DataError(
            f"{url}: cannot read the published checksums ({_reason(e)}); give the expected md5 of {name} with --md5"
        ) from None
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[1].lstrip("*") == name:
            return fields[0].lower()
    raise DataError(f"{url}: no checksum listed for {name}; give the expected md5 with --md5")


def fetch_hg38(
    dest: str | Path,
    source: str = "ucsc",
    base_url: str | None = None,
    expected_md5: str | None = None,
    threads: int = 1,
    progress: bool = False,
    timeout: float = 60.0,
) -> dict[str, Path | None]:
    """Download, verify, bgzip-recompress and index; returns ``{"fasta": ..., "intervals": ... or None}``.

    The checksum is looked up before the ~1 GB download, so a mirror without one fails in a second. An
    interrupted download is continued by the next run (HTTP range request). Idempotent: a finished genome
    (FASTA + index) in ``dest`` is not downloaded again. A failure leaves no empty ``dest`` behind.
    """
    if source not in SOURCES:
        raise ConfigError(f"unknown HG38 source '{source}' (choose from {', '.join(SOURCES)})")
    if expected_md5 is not None and not re.fullmatch(r"[0-9a-fA-F]{32}", expected_md5):
        raise ConfigError(f"--md5: expected 32 hexadecimal digits, got '{expected_md5}'")
    default_url, fasta_name, bed_name = SOURCES[source]
    base = (base_url or default_url).rstrip("/") + "/"
    dest = Path(dest)
    with output_dir(dest):
        fasta = dest / fasta_name
        bed = dest / bed_name if bed_name else None
        if not (fasta.exists() and Path(f"{fasta}.fai").exists() and Path(f"{fasta}.gzi").exists()):
            want = expected_md5 or (_published_md5(base, fasta_name, timeout) if source == "ucsc" else None)
            download = dest / f".{fasta_name}.part"
            got = _download(base + fasta_name, download, timeout, progress)
            if want is not None and got != want.lower():
                download.unlink()
                raise DataError(
                    f"{base + fasta_name}: checksum mismatch (expected md5 {want}, got {got}); the download was removed"
                )
            try:
                prepare_fasta(download, fasta, threads=threads, progress=progress)
            except DataError:
                download.unlink()  # verified or not, it is no FASTA: nothing to resume
                raise
            download.unlink()
        if bed is not None and not bed.exists():
            part = dest / f".{bed.name}.part"
            _download(base + bed.name, part, timeout)
            try:
                read_split_bed(part, Genome(fasta))
            except DataError:
                part.unlink()
                raise
            commit(part, bed)
    return {"fasta": fasta, "intervals": bed}
