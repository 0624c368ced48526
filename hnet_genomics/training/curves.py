"""PNG of the training curves: bits per base (train and validation) and compression ratio per stage."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from hnet_genomics.atomic import atomic_path


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


def read_log_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def restore_earlier_log(path: Path, earlier: list[dict[str, str]], resumed_at: int) -> None:
    """Lightning's CSV logger deletes ``metrics.csv`` when a run resumes; put the rows logged before the
    resumed step back in front of the new ones, so the training curve covers the whole run."""
    kept = [r for r in earlier if int(float(r.get("step") or 0)) < resumed_at]
    if not kept:
        return
    rows = kept + read_log_rows(path)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def bpb_axis_top(train: list[tuple[int, float]], history: list[dict]) -> float:
    """Top of the bits-per-base axis: cut the first steps (near 8 bits, 256-way bytes), which would flatten the
    interesting part, but never the run itself: a run that stays above 2.6 bpb must still be visible."""
    last = max([s for s, _ in train] + [h["step"] for h in history] + [0])
    late = sorted(v for s, v in train if s >= 0.1 * last)
    shown = [h["val_bpb"] for h in history if h.get("val_bpb") is not None]
    if late:
        shown.append(late[min(len(late) - 1, int(0.99 * len(late)))])
    return max([2.6] + [v + 0.1 for v in shown if math.isfinite(v)])


def plot_curves(log_csv: Path, history: list[dict], out_png: Path, title: str, unit: str = "base") -> None:
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
    if unit == "base":
        ax.axhline(2.0, color="grey", ls=":", lw=1, label="uniform over ACGT")
    ax.set_ylim(top=bpb_axis_top(series.get("train/bpb", []), history))
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(f"bits per {unit}")
    ax.set_title(f"{title}: next-{unit} loss")
    if ax.get_legend_handles_labels()[0]:
        ax.legend()
    ax = axes[1]
    for key in comp_keys:
        steps, values = zip(*series[key])
        ax.plot(steps, values, lw=0.8, label=f"stage {key.rsplit('_', 1)[1]} (train)")
    for s in range(len(history[-1]["compression_ratios"]) if history else 0):
        ax.plot(
            [h["step"] for h in history],
            [h["compression_ratios"][s] for h in history],
            "o--",
            label=f"stage {s + 1} (validation)",
        )
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
