"""Download HG38 and turn it into a random-access genome (bgzip + faidx), with checksums.

Two sources: UCSC's ``hg38.fa.gz`` (checksums published in ``md5sum.txt`` beside it) and the Basenji
``hg38.ml.fa.gz`` + ``sequences_human.bed`` split file that HyenaDNA and Caduceus pretrain on (no published
checksum: the gzip CRC of every member is still verified while re-compressing). Any ``base_url`` that
urllib can open works, ``file://`` included, which is how mirrors and the tests use it.
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from pathlib import Path

from hnet_genomics.data.atomic import atomic_path
from hnet_genomics.data.fasta import prepare_fasta
from hnet_genomics.data.genome import Genome
from hnet_genomics.data.intervals import read_split_bed
from hnet_genomics.errors import ConfigError, DataError

SOURCES = {
    "ucsc": ("https://hgdownload.soe.ucsc.edu/goldenPath/hg38/bigZips/", "hg38.fa.gz", None),
    "basenji": ("https://storage.googleapis.com/basenji_barnyard2/", "hg38.ml.fa.gz", "sequences_human.bed"),
}


def _download(url: str, dest: Path) -> str:
    """Stream ``url`` to ``dest`` atomically; return its md5."""
    md5 = hashlib.md5()
    try:
        with urllib.request.urlopen(url) as response, atomic_path(dest) as tmp, open(tmp, "wb") as out:
            while chunk := response.read(1 << 20):
                md5.update(chunk)
                out.write(chunk)
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise DataError(f"{url}: download failed ({getattr(e, 'reason', e)})") from None
    return md5.hexdigest()


def _published_md5(base_url: str, name: str) -> str:
    url = base_url + "md5sum.txt"
    try:
        with urllib.request.urlopen(url) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise DataError(f"{url}: cannot read checksums ({getattr(e, 'reason', e)}); pass expected_md5") from None
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 2 and fields[1].lstrip("*") == name:
            return fields[0].lower()
    raise DataError(f"{url}: no checksum listed for {name}")


def fetch_hg38(dest: str | Path, source: str = "ucsc", base_url: str | None = None,
               expected_md5: str | None = None) -> dict[str, Path | None]:
    """Download, verify, bgzip-recompress and index; returns ``{"fasta": ..., "intervals": ... or None}``.

    Idempotent: a finished genome (FASTA + index) in ``dest`` is not downloaded again.
    """
    if source not in SOURCES:
        raise ConfigError(f"unknown HG38 source '{source}' (choose from {', '.join(SOURCES)})")
    default_url, fasta_name, bed_name = SOURCES[source]
    base = (base_url or default_url).rstrip("/") + "/"
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    fasta = dest / fasta_name
    bed = dest / bed_name if bed_name else None

    if not (fasta.exists() and Path(f"{fasta}.fai").exists() and Path(f"{fasta}.gzi").exists()):
        download = dest / f".{fasta_name}.download"
        try:
            got = _download(base + fasta_name, download)
            want = expected_md5 or (_published_md5(base, fasta_name) if source == "ucsc" else None)
            if want is not None and got != want.lower():
                raise DataError(f"{base + fasta_name}: checksum mismatch (expected md5 {want}, got {got})")
            prepare_fasta(download, fasta)
        finally:
            download.unlink(missing_ok=True)
    if bed is not None and not bed.exists():
        _download(base + bed.name, bed)
    if bed is not None:
        try:
            read_split_bed(bed, Genome(fasta))
        except DataError:
            bed.unlink()
            raise
    return {"fasta": fasta, "intervals": bed}
