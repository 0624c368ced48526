"""One table (Markdown, CSV, JSON) and one plot per benchmark suite: our runs beside quoted published results.

Our numbers (the fine-tuned model and the k-mer baseline) are the mean ± sample standard deviation over our
seeds, measured by this run. Quoted numbers come from ``reporting/published/<suite>.yaml`` exactly as their
source prints them, with the citation and the meaning of the source's own "±" (often max - min over seeds, not
a standard deviation) written under the table; a cell the sources do not fill stays empty and the table says why.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hnet_genomics.atomic import atomic_path, write_json_atomic, write_text_atomic
from hnet_genomics.reporting.published import Published, PublishedColumn

EMPTY = "—"
FILES = ("benchmark.md", "benchmark.csv", "benchmark.json", "benchmark.png")


@dataclass(frozen=True)
class Score:
    mean: float
    std: float
    n: int  # seeds


@dataclass(frozen=True)
class TaskRow:
    name: str
    label: str
    metric: str  # key: accuracy, mcc, f1_macro
    metric_name: str  # as printed: accuracy, MCC, macro F1
    model: Score | None  # None: the task has not run (or ran without the model)
    kmer: Score | None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableMeta:
    suite: str
    title: str
    citation: str
    model_label: str  # column header of our model, e.g. "H-Net (ours)"
    kmer_label: str
    settings: tuple[str, ...] = field(default_factory=tuple)  # one line each, printed above the table


def _ours(score: Score | None) -> str:
    if score is None:
        return "not run"
    return f"{score.mean:.3f} ± {score.std:.3f}"


def _quoted_cell(published: Published, column: int, task: str) -> str:
    q = published.columns[column].results.get(task)
    if q is None:
        return EMPTY
    return f"{q.value:.3f}" if q.spread is None else f"{q.value:.3f} (±{q.spread:.3f})"


def _references(published: Published) -> dict[str, int]:
    keys: dict[str, int] = {}
    for col in published.columns:
        if col.source is not None:
            keys.setdefault(col.source.key, len(keys) + 1)
    return keys


def _header(col: PublishedColumn, refs: dict[str, int]) -> str:
    return col.model if col.source is None else f"{col.model} [{refs[col.source.key]}]"


def markdown(meta: TableMeta, rows: list[TaskRow], published: Published) -> str:
    refs = _references(published)
    header = ["task", "metric", meta.model_label, meta.kmer_label] + [_header(c, refs) for c in published.columns]
    lines = [
        f"# {meta.title}: {meta.model_label}" + (" beside published results" if published.columns else ""),
        "",
        f"Suite: {meta.citation}.",
        "",
        "**Ours** (the two columns marked ours): measured by this run, mean ± sample standard "
        "deviation over our seeds, each seed's model chosen at its best validation epoch and tested once.",
        "**Quoted** (columns marked [n]): copied from the source below, never recomputed; (±) is the source's "
        "own spread, explained with the source. A dash: no published number found (see the notes)."
        if published.columns
        else "No published results are quoted for this suite.",
        "",
        *[f"- {line}" for line in meta.settings],
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    for row in rows:
        cells = [row.label, row.metric_name, _ours(row.model), _ours(row.kmer)]
        cells += [_quoted_cell(published, i, row.name) for i in range(len(published.columns))]
        lines.append("| " + " | ".join(cells) + " |")
    if refs:
        lines += ["", "Sources of the quoted numbers:", ""]
    for key, n in refs.items():
        src = published.sources[key]
        spread = f" (±) = {src.spread}." if src.spread else " No spread printed."
        unit = " Printed there as percentages; shown here as fractions." if src.unit == "percent" else ""
        lines.append(f"[{n}] {src.citation}, {src.table} ({src.url}).{spread}{unit} Protocol: {src.protocol}.")
    if published.not_quoted:
        lines += ["", "Empty cells:", ""] + [f"- {n}" for n in published.not_quoted]
    notes = [(row.label, note) for row in rows for note in row.notes]
    if notes:
        lines += ["", "Run notes:", ""] + [f"- {label}: {note}" for label, note in notes]
    return "\n".join(lines) + "\n"


def long_rows(meta: TableMeta, rows: list[TaskRow], published: Published) -> list[dict[str, Any]]:
    """One record per (task, model): the CSV and the JSON hold the same."""
    out: list[dict[str, Any]] = []
    for row in rows:
        base = {"suite": meta.suite, "task": row.name, "task_label": row.label, "metric": row.metric}
        for label, score in ((meta.model_label, row.model), (meta.kmer_label, row.kmer)):
            out.append(
                base
                | {
                    "model": label,
                    "origin": "ours",
                    "value": None if score is None else score.mean,
                    "spread": None if score is None else score.std,
                    "spread_kind": None if score is None else f"sample std over {score.n} seeds",
                    "source": "this run",
                }
            )
        for col in published.columns:
            q = col.results.get(row.name)
            src = col.source
            out.append(
                base
                | {
                    "model": col.model,
                    "origin": "quoted",
                    "value": None if q is None else q.value,
                    "spread": None if q is None else q.spread,
                    "spread_kind": src.spread if src is not None and q is not None and q.spread is not None else None,
                    "source": "no published result found" if src is None else f"{src.citation}, {src.table}",
                }
            )
    return out


def csv_text(records: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    fields = ["suite", "task", "task_label", "metric", "model", "origin", "value", "spread", "spread_kind", "source"]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in records:
        writer.writerow({k: "" if r[k] is None else r[k] for k in fields})
    return buf.getvalue()


def plot(meta: TableMeta, rows: list[TaskRow], published: Published, path: Path) -> None:
    """Tasks down, score across: ours filled with ± std bars, quoted hollow (their ± not drawn: not a std)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    refs = _references(published)
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.8))
    ys = list(range(len(rows)))[::-1]
    offsets = [-0.3 + 0.6 * i / max(1, len(published.columns) + 1) for i in range(len(published.columns) + 2)]

    def draw(values: Sequence[tuple[int, float, float | None]], dy: float, **style: Any) -> None:
        if values:
            spreads = [e for _, _, e in values]
            ax.errorbar(
                [v for _, v, _ in values],
                [ys[i] + dy for i, _, _ in values],
                xerr=None if all(e is None for e in spreads) else [0.0 if e is None else e for e in spreads],
                linestyle="none",
                capsize=2,
                **style,
            )

    draw(
        [(i, r.model.mean, r.model.std) for i, r in enumerate(rows) if r.model],
        offsets[0],
        marker="o",
        color="black",
        label=meta.model_label,
    )
    draw(
        [(i, r.kmer.mean, r.kmer.std) for i, r in enumerate(rows) if r.kmer],
        offsets[1],
        marker="s",
        color="0.55",
        label=meta.kmer_label,
    )
    markers = "^vD<>ph*"
    for j, col in enumerate(c for c in published.columns if c.source is not None):
        values = [(i, col.results[r.name].value, None) for i, r in enumerate(rows) if r.name in col.results]
        draw(
            values,
            offsets[j + 2],
            marker=markers[j % len(markers)],
            color=f"C{j % 10}",
            markerfacecolor="none",
            label=f"{_header(col, refs)}, quoted",
        )
    ax.set_yticks(ys)
    ax.set_yticklabels([f"{r.label} ({r.metric_name})" for r in rows])
    ax.set_xlabel("test score (higher is better)")
    ax.set_title(f"{meta.title}: ours (filled, ± std over seeds) and quoted (hollow)")
    shown = [s.mean for r in rows for s in (r.model, r.kmer) if s is not None]
    shown += [q.value for c in published.columns for q in c.results.values()]
    low = min(shown, default=0.0)
    ax.set_xlim(max(-1.05, min(low, 0.5) - 0.05), 1.02)  # MCC may go below 0; accuracy and F1 stay in [0, 1]
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12 - 0.2 / max(1, len(rows))), ncol=2, fontsize=8)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def write_benchmark_table(out_dir: Path, meta: TableMeta, rows: list[TaskRow], published: Published) -> list[Path]:
    """``benchmark.md``, ``.csv``, ``.json`` and ``.png`` in ``out_dir``, each written atomically."""
    out_dir = Path(out_dir)
    records = long_rows(meta, rows, published)
    paths = [out_dir / name for name in FILES]
    write_text_atomic(paths[0], markdown(meta, rows, published))
    write_text_atomic(paths[1], csv_text(records))
    write_json_atomic(
        paths[2],
        {
            "suite": meta.suite,
            "title": meta.title,
            "citation": meta.citation,
            "settings": list(meta.settings),
            "tasks": [
                {
                    "task": r.name,
                    "label": r.label,
                    "metric": r.metric,
                    "ours": {
                        meta.model_label: None if r.model is None else vars(r.model),
                        meta.kmer_label: None if r.kmer is None else vars(r.kmer),
                    },
                    "notes": list(r.notes),
                }
                for r in rows
            ],
            "sources": {k: vars(s) for k, s in published.sources.items()},
            "not_quoted": list(published.not_quoted),
            "records": records,
        },
    )
    plot(meta, rows, published, paths[3])
    return paths
