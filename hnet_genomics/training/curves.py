"""PNG of the training curves: bits per base (train and validation) and compression ratio per stage."""

from __future__ import annotations

import csv
from pathlib import Path

from hnet_genomics.data.atomic import atomic_path


def _read_train_log(path: Path) -> dict[str, list[tuple[int, float]]]:
    series: dict[str, list[tuple[int, float]]] = {}
    if not path.is_file():
        return series
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            step = int(float(row.get("step") or 0))
            for key, value in row.items():
                if key.startswith("train/") and value not in ("", None):
                    series.setdefault(key, []).append((step, float(value)))
    return series


def plot_curves(log_csv: Path, history: list[dict], out_png: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = _read_train_log(Path(log_csv))
    comp_keys = sorted(k for k in series if k.startswith("train/compression_"))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    ax = axes[0]
    if "train/bpb" in series:
        steps, values = zip(*series["train/bpb"])
        ax.plot(steps, values, lw=0.8, alpha=0.6, label="train")
    if history:
        ax.plot([h["step"] for h in history], [h["val_bpb"] for h in history], "o-", label="validation")
    ax.axhline(2.0, color="grey", ls=":", lw=1, label="uniform over ACGT")
    ax.set_ylim(top=2.6)  # the first steps (near 8 bits: 256-way bytes) would flatten the interesting part
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("bits per base")
    ax.set_title(f"{title}: next-base loss")
    ax.legend()
    ax = axes[1]
    for key in comp_keys:
        steps, values = zip(*series[key])
        ax.plot(steps, values, lw=0.8, label=f"stage {key.rsplit('_', 1)[1]} (train)")
    for s in range(len(history[-1]["compression_ratios"]) if history else 0):
        ax.plot([h["step"] for h in history], [h["compression_ratios"][s] for h in history], "o--",
                label=f"stage {s + 1} (validation)")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("L_s / L_(s+1) (log scale)")
    ax.set_yscale("log")  # early routing can briefly select almost nothing (ratio ~ window length)
    ax.set_title("compression ratio")
    if comp_keys or history:
        ax.legend()
    else:
        ax.text(0.5, 0.5, "isotropic model: no chunking", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
