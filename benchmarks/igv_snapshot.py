"""Open exported boundary tracks in IGV desktop (headless, under Xvfb) and save a PNG of one locus.

Checks that the tracks load in the browser users actually use, and makes the README figure:

    python benchmarks/igv_snapshot.py --tracks results/demo/tracks/hnet_1stage/hnet_1stage \\
        --fasta results/demo/genome/genome.fa.gz --annotation hnet_genomics/data/demo/human_chr6p21_hla.exons.bed \\
        --locus BA000025.2:2013301-2013460 --out benchmarks/results/igv-hla-stage1.png

Needs the Debian packages igv, xvfb and xauth. IGV fetches nothing here: the genome is the local FASTA
(decompressed into a temporary folder, with its .fai), so it also runs offline.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def write_genome(fasta: Path, folder: Path) -> Path:
    import pysam

    plain = folder / "genome.fa"
    opener = gzip.open if fasta.suffix == ".gz" else open
    with opener(fasta, "rb") as src, open(plain, "wb") as dst:
        shutil.copyfileobj(src, dst)
    pysam.faidx(str(plain))
    return plain


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracks", type=Path, required=True, help="PREFIX given to `hnet-genomics boundaries --out`")
    ap.add_argument("--fasta", type=Path, required=True)
    ap.add_argument("--annotation", type=Path, help="BED drawn under the tracks (exons, genes)")
    ap.add_argument("--locus", required=True, help="CHROM:START-END, 1-based as IGV shows it")
    ap.add_argument("--stage", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = ap.parse_args()
    if shutil.which("igv") is None or shutil.which("xvfb-run") is None:
        print("error: needs IGV desktop and Xvfb (apt-get install igv xvfb xauth)", file=sys.stderr)
        return 2
    bigwig = Path(f"{args.tracks}.stage{args.stage}.bw").resolve()
    chunks = Path(f"{args.tracks}.stage{args.stage}.bed.gz").resolve()
    for path in (bigwig, chunks, Path(f"{chunks}.tbi")):
        if not path.is_file():
            print(
                f"error: {path}: missing (run `hnet-genomics boundaries` with bigwig and tabix formats)",
                file=sys.stderr,
            )
            return 2
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        genome = write_genome(args.fasta, tmp)
        (tmp / "home" / "igv").mkdir(parents=True)
        (tmp / "home" / "igv" / "prefs.properties").write_text(f"DEFAULT_GENOME_KEY={genome}\n")
        loads = [f"load {bigwig}", f"load {chunks}"]
        if args.annotation:
            loads.append(f"load {args.annotation.resolve()}")
        (tmp / "batch.txt").write_text(
            "\n".join(
                [
                    "new",
                    f"genome {genome}",
                    *loads,
                    f"goto {args.locus}",
                    f"setDataRange 0,1 {bigwig.name}",
                    f"setTrackHeight 60 {bigwig.name}",
                    "maxPanelHeight 260",
                    f"snapshotDirectory {tmp}",
                    "snapshot snapshot.png",
                    "exit",
                    "",
                ]
            )
        )
        env = {"HOME": str(tmp / "home"), "PATH": "/usr/bin:/bin"}
        run = subprocess.run(
            ["xvfb-run", "-a", "-s", "-screen 0 1200x700x24", "igv", "-b", str(tmp / "batch.txt")],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        shot = tmp / "snapshot.png"
        if not shot.is_file():
            print(f"error: IGV wrote no snapshot (exit {run.returncode}): {run.stdout[-500:]}", file=sys.stderr)
            return 1
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp_out = args.out.with_name(f".{args.out.name}.tmp")
        shutil.copyfile(shot, tmp_out)
        tmp_out.replace(args.out)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
