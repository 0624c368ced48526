"""Build two small stand-in suites from the package's embedded real DNA, one in each benchmark layout.

    python benchmarks/suite_standin.py --out standin/
    hnet-genomics benchmark --suite standin/class-folders.yaml --data standin/class-folders --model M --out R1
    hnet-genomics benchmark --suite standin/split-files.yaml --data standin/split-files --model M --out R2

They are NOT the Genomic Benchmarks or Nucleotide Transformer suites (those cannot be downloaded everywhere):
they exercise `hnet-genomics benchmark` end to end on real sequences laid out exactly as the suites lay theirs
out, with a registry of their own, so no published result is quoted beside them.

- ``class-folders`` (Genomic Benchmarks layout, ``<task>/{train,test}/<class>/<id>.txt``): ``oct4_vs_mafk``
  (the embedded Oct4 vs Mafk binding sites, 200 bp) and ``human_vs_ecoli`` (`make-task species`: 200 bp windows
  of the human HLA region vs E. coli K-12, test windows after 85 % of each record), both scored by accuracy.
- ``split-files`` (Nucleotide Transformer layout, ``<task>/{train,test}.fna`` with ``>name|label``):
  ``exon_starts`` (`make-task exon-starts`, stranded, macro F1 as the suite's splice-site tasks) and
  ``oct4_vs_mafk`` (MCC as the suite's histone-mark and enhancer tasks).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import yaml

from hnet_genomics.data import demo
from hnet_genomics.data.labelled import LabelledSequences, read_labelled

TFBS_CLASSES = {"0": "mafk", "1": "oct4"}  # label 1 = Oct4 (POU5F1), 0 = Mafk (data/demo/README.md)


def class_folders(data: LabelledSequences, folder: Path, names: dict[str, str]) -> None:
    for i, (seq, label) in enumerate(zip(data.sequences, data.labels)):
        target = folder / names[label]
        target.mkdir(parents=True, exist_ok=True)
        (target / f"{i}.txt").write_text(seq.decode())


def fasta(data: LabelledSequences, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        for i, (seq, label) in enumerate(zip(data.sequences, data.labels)):
            fh.write(f">seq{i}|{label}\n")
            for j in range(0, len(seq), 60):
                fh.write(seq[j : j + 60].decode() + "\n")


def registry(name: str, layout: str, tasks: list[dict]) -> dict:
    return {
        "name": name,
        "title": f"Stand-in suite ({layout} layout, not a published suite)",
        "citation": "built by benchmarks/suite_standin.py from the package's embedded real DNA",
        "layout": layout,
        "fetch": {"via": "none"},
        "tasks": tasks,
    }


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="new folder for the two stand-in suites")
    args = ap.parse_args(argv)
    out: Path = args.out
    if out.exists():
        ap.error(f"--out {out}: exists; choose a new folder")
    tasks = out / "made"
    for kind in ("species", "exon-starts"):
        subprocess.run(["hnet-genomics", "make-task", kind, "--out", str(tasks / kind)], check=True)
    tfbs = {s: read_labelled(demo.TFBS_DIR / f"{s}.csv.gz") for s in ("train", "test")}
    species = {s: read_labelled(tasks / "species" / f"{s}.csv.gz") for s in ("train", "test")}
    exons = {s: read_labelled(tasks / "exon-starts" / f"{s}.csv.gz") for s in ("train", "test")}
    for split in ("train", "test"):
        class_folders(tfbs[split], out / "class-folders" / "oct4_vs_mafk" / split, TFBS_CLASSES)
        class_folders(
            species[split], out / "class-folders" / "human_vs_ecoli" / split, {"ecoli": "ecoli", "human": "human"}
        )
        fasta(exons[split], out / "split-files" / "exon_starts" / f"{split}.fna")
        fasta(tfbs[split], out / "split-files" / "oct4_vs_mafk" / f"{split}.fna")
    task = {"group": "stand-in", "max_len": 1024}
    gb = [
        {**task, "name": "oct4_vs_mafk", "label": "Oct4 vs Mafk", "metric": "accuracy", "classes": ["mafk", "oct4"]}
        | {"stranded": False},
        {**task, "name": "human_vs_ecoli", "label": "Human vs E. coli", "metric": "accuracy"}
        | {"classes": ["ecoli", "human"], "stranded": False},
    ]
    nt = [
        {**task, "name": "exon_starts", "label": "Exon starts", "metric": "f1_macro", "classes": ["0", "1"]}
        | {"stranded": True},
        {**task, "name": "oct4_vs_mafk", "label": "Oct4 vs Mafk", "metric": "mcc", "classes": ["0", "1"]}
        | {"stranded": False},
    ]
    (out / "class-folders.yaml").write_text(yaml.safe_dump(registry("standin-class-folders", "class-folders", gb)))
    (out / "split-files.yaml").write_text(yaml.safe_dump(registry("standin-split-files", "split-files", nt)))
    print(f"wrote {out}/class-folders(.yaml) and {out}/split-files(.yaml)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
