"""Markdown table rows from `hnet-genomics finetune` outputs: one row per model (and k-mer baseline) per run.

    python benchmarks/finetune_rows.py "pretrained H-Net, lr 1e-3=ft/exon/" "k-mer=ft/exon_kmer/"

Each argument is LABEL=DIR (DIR holds metrics.json); rows show test accuracy, MCC and AUROC as mean ± std over
seeds, then the per-seed accuracies and the mean seconds per seed, so tables are copied, never retyped.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def rows(label: str, directory: Path) -> list[str]:
    report = json.loads((directory / "metrics.json").read_text())
    out = []
    for kind, res in report["results"].items():
        mean, std, seeds = res["mean"], res["std"], res["seeds"]
        cells = [f"{mean[k]:.3f} ± {std[k]:.3f}" for k in ("test_accuracy", "test_mcc", "test_auroc")]
        per_seed = " / ".join(f"{s['test_accuracy']:.3f}" for s in seeds)
        name = label if kind == "model" else f"{label} ({kind})" if len(report["results"]) > 1 else label
        out.append(f"| {name} | {len(seeds)} | " + " | ".join(cells) + f" | {per_seed} | {mean['seconds']:.0f} |")
    return out


def main(argv: list[str]) -> int:
    print("| model | seeds | test accuracy | test MCC | test AUROC | accuracy per seed | s / seed |")
    print("|---|---|---|---|---|---|---|")
    for item in argv:
        label, directory = item.rsplit("=", 1)
        print("\n".join(rows(label, Path(directory))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
