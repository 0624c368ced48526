"""Run reports: one markdown page per pretraining run (the comparison of several runs is in ``compare``).

The numbers come only from the JSON files the other commands write (``pretrain``'s metrics.json,
``eval``'s JSON, ``enrichment``'s summary), so a report can be rebuilt at any time without a model
or a GPU, and every figure in it can be traced back to a file next to it. A text run counts bytes where a DNA
run counts bases (its files say ``"unit": "byte"``), and its report says so: bits per byte, bytes seen.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

from hnet_genomics.atomic import atomic_path, output_dir, write_text_atomic
from hnet_genomics.errors import DataError

UNIFORM_BPB = 2.0  # log2(4): a model that knows nothing beyond "one of A, C, G, T"
# What a run's bits are counted per (metrics.json's and eval's "unit"; files without one are DNA runs), and the
# model that knows nothing about its input: one of A/C/G/T, or one of 256 byte values (8 bits per byte).
UNITS = ("base", "byte")
UNIFORM = {"base": ("uniform over A/C/G/T", UNIFORM_BPB), "byte": ("uniform over 256 byte values", 8.0)}
TRACK_SUFFIXES = (".bw", ".bb", ".bed.gz", ".bed.gz.tbi", ".bedGraph", ".bed")
ENRICHMENT_FILES = ("summary.json", "enrichment.json")


def read_json(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object")
    return data


def read_run_metrics(run_dir: str | Path) -> dict[str, Any]:
    """``metrics.json`` of a ``pretrain`` output directory."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"{run_dir}: no such pretraining directory")
    return read_json(run_dir / "metrics.json")


def bpb_of(result: dict[str, Any], path: str | Path) -> float:
    value = result.get("bpb")
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise DataError(f"{path}: no numeric 'bpb' field")
    return float(value)


def unit_of(result: dict[str, Any], path: str | Path) -> str:
    """ "base" or "byte": what the bits of a run's metrics.json or an eval JSON are per (no key: a DNA file)."""
    unit = result.get("unit", "base")
    if unit not in UNITS:
        raise DataError(f"{path}: 'unit' is {json.dumps(unit)}, expected one of {', '.join(UNITS)}")
    return str(unit)


def history_of(metrics: dict[str, Any], path: str | Path) -> list[tuple[float, float]]:
    """(bases seen, val bpb) points of a run, in training order (bytes seen for a text run)."""
    seen = f"{unit_of(metrics, path)}s_seen"
    points = []
    for i, row in enumerate(metrics.get("history") or []):
        try:
            points.append((float(row[seen]), float(row["val_bpb"])))
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{path}: history[{i}] needs numeric '{seen}' and 'val_bpb'") from None
    return points


def check_same_unit(unit: str, where: str, other: dict[str, Any], other_path: str | Path, label: str) -> None:
    """``other`` (an eval or Markov JSON, the option ``label`` names) counts the same unit as what ``where`` names:
    bits per base and bits per byte are not one scale."""
    found = unit_of(other, other_path)
    if found != unit:
        raise DataError(
            f"{label}: bits per {found}, while {where}: bits per {unit}; give results of one kind (DNA or text)"
        )


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        if value and abs(value) < 1e-3:  # p-values
            return f"{value:.2e}"
        return f"{value:.{digits}f}"
    if isinstance(value, (list, tuple)):
        return " / ".join(_fmt(v, 2) for v in value)
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _save_figure(fig: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")


def plot_bpb_curves(
    curves: dict[str, list[tuple[float, float]]],
    references: dict[str, float],
    path: Path,
    title: str,
    y_max: float | None = None,
    bands: dict[str, list[tuple[float, float, float]]] | None = None,
    unit: str = "base",
) -> None:
    """Validation bpb against bases seen, with horizontal reference lines (Markov, uniform). ``y_max`` cuts
    off early points far above the rest so the differences that matter stay visible; ``bands`` shades each
    run's spread over seeds (lowest to highest seed at each evaluation); ``unit`` "byte" labels a text run's
    axes in bytes."""
    import matplotlib.pyplot as plt

    fig = bpb_figure(curves, references, title, y_max, bands, unit)
    _save_figure(fig, path)
    plt.close(fig)


def bpb_figure(
    curves: dict[str, list[tuple[float, float]]],
    references: dict[str, float],
    title: str,
    y_max: float | None = None,
    bands: dict[str, list[tuple[float, float, float]]] | None = None,
    unit: str = "base",
):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    bands = bands or {}
    for i, (name, points) in enumerate(curves.items()):
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, marker="o", markersize=3, label=name, color=f"C{i}")
        band = bands.get(name)
        if band:
            bx, lo, hi = zip(*band)
            ax.fill_between(bx, lo, hi, color=f"C{i}", alpha=0.2, linewidth=0)
    for i, (name, value) in enumerate(references.items()):
        ax.axhline(value, linestyle="--", linewidth=1, color=f"C{len(curves) + i}", label=name)
    if y_max is not None:
        lows = [y for points in curves.values() for _, y in points] + list(references.values())
        lows += [lo for band in bands.values() for _, lo, _ in band]
        ax.set_ylim(min(lows) - 0.01, y_max)
    ax.set_xlabel(f"{unit}s seen in training")
    ax.set_ylabel(f"validation bits per {unit}" + (f" (axis cut at {y_max:g})" if y_max is not None else ""))
    ax.set_title(title + ("\nshaded: range over seeds" if any(bands.values()) else ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def _relative(target: Path, out_dir: Path) -> str:
    return os.path.relpath(target.resolve(), out_dir.resolve())


def _reference_label(result: dict[str, Any], path: Path) -> str:
    return f"{result.get('model', path.stem)} ({result.get('split', '?')} split)"


def _copy_into(src: Path, out_dir: Path, name: str) -> str | None:
    if not src.is_file():
        return None
    with atomic_path(out_dir / name) as tmp:
        shutil.copyfile(src, tmp)
    return name


def _bpb_section(
    name: str,
    metrics: dict[str, Any] | None,
    evaluation: tuple[dict, Path] | None,
    markov: tuple[dict, Path] | None,
    unit: str = "base",
) -> list[str]:
    rows: list[list[Any]] = []
    if metrics is not None and isinstance(metrics.get("val_bpb"), (int, float)):
        scored = metrics.get(f"val_{unit}s_scored")
        rows.append([f"{name} (end of training)", "valid", float(metrics["val_bpb"]), scored])
    test_bpb = markov_bpb = None
    if evaluation is not None:
        result, path = evaluation
        test_bpb = bpb_of(result, path)
        rows.append([name, result.get("split", "test"), test_bpb, result.get(f"{unit}s")])
    if markov is not None:
        result, path = markov
        markov_bpb = bpb_of(result, path)
        rows.append([result.get("model", "markov"), result.get("split", "test"), markov_bpb, result.get("bases")])
    label, uniform = UNIFORM[unit]
    rows.append([label, "any", uniform, None])
    out = [f"## Bits per {unit}", "", _table(["model", "split", "bpb", f"{unit}s scored"], rows), ""]
    if test_bpb is not None and markov_bpb is not None:
        gap = markov_bpb - test_bpb
        out += [
            f"On the held-out bases the model is {abs(gap):.4f} bits per base "
            f"{'better' if gap > 0 else 'worse'} than the Markov reference (lower bpb is better).",
            "",
        ]
    return out


def _training_section(
    metrics: dict[str, Any], run_dir: Path, out_dir: Path, references: dict[str, float], unit: str = "base"
) -> list[str]:
    keys = [
        ("params", "parameters"),
        (f"{unit}s_seen", f"{unit}s seen"),
        (f"{unit}s_per_second", f"{unit}s / second"),
        ("compression_ratios", f"compression ratio per stage ({unit}s per chunk)"),
        (f"flops_per_{unit}", f"FLOPs per {unit}"),
    ]
    rows = [[label, metrics[key]] for key, label in keys if key in metrics]
    out = [
        "## Training",
        "",
        f"Run directory: `{_relative(run_dir, out_dir)}`",
        "",
        _table(["quantity", "value"], rows),
        "",
    ]
    curves = _copy_into(run_dir / "curves.png", out_dir, "curves.png")
    if curves:
        out += [f"![training curves]({curves})", ""]
    points = history_of(metrics, run_dir / "metrics.json")
    if points:
        plot_bpb_curves(
            {str(metrics.get("config", run_dir.name)): points},
            references,
            out_dir / "val_bpb.png",
            "Validation bpb during training",
            unit=unit,
        )
        out += [f"![validation bpb against {unit}s seen](val_bpb.png)", ""]
    return out


def _enrichment_summary(enrichment_dir: Path) -> dict[str, Any]:
    found = [enrichment_dir / n for n in ENRICHMENT_FILES if (enrichment_dir / n).is_file()]
    if not found:
        raise DataError(f"{enrichment_dir}: no {' or '.join(ENRICHMENT_FILES)} (run `hnet-genomics enrichment`)")
    return read_json(found[0])


def _enrichment_section(enrichment_dir: Path, out_dir: Path) -> list[str]:
    summary = _enrichment_summary(enrichment_dir)
    rows = [
        [
            r.get("flank"),
            r.get("n_boundaries"),
            r.get("observed"),
            r.get("expected"),
            r.get("ratio"),
            r.get("p_enrichment"),
        ]
        for r in summary.get("enrichment", [])
    ]
    out = [
        "## Boundaries at annotated feature edges",
        "",
        f"Annotation: `{summary.get('annotation', '?')}`; stage-1 boundaries within ±flank bp of a feature "
        f"edge, against the same number of boundaries shuffled within each region.",
        "",
        _table(["flank (bp)", "boundaries", "near an edge", "expected", "ratio", "p (enrichment)"], rows),
        "",
    ]
    lengths = summary.get("chunk_lengths") or {}
    if isinstance(lengths.get("inside"), dict) and isinstance(lengths.get("outside"), dict):
        out += [
            f"Median chunk length inside features {_fmt(lengths['inside'].get('median_bp'), 1)} bp, outside "
            f"{_fmt(lengths['outside'].get('median_bp'), 1)} bp (Mann-Whitney p = "
            f"{_fmt(lengths.get('mann_whitney_p'))}).",
            "",
        ]
    figure = _copy_into(enrichment_dir / "edge_density.png", out_dir, "edge_density.png")
    if figure:
        out += [f"![boundary density around feature edges]({figure})", ""]
    return out


def _track_files(prefix: Path) -> list[Path]:
    files = sorted(p for p in prefix.parent.glob(f"{prefix.name}.*") if p.name.endswith(TRACK_SUFFIXES))
    if not files:
        raise DataError(f"{prefix}: no track files with this prefix (run `hnet-genomics boundaries`)")
    return files


def _tracks_section(prefix: Path, out_dir: Path) -> list[str]:
    files = _track_files(prefix)
    listing = [f"- `{_relative(p, out_dir)}`" for p in files]
    bigwig = next((p.name for p in files if p.name.endswith(".bw")), f"{prefix.name}.stage1.bw")
    bed = next((p.name for p in files if p.name.endswith(".bed.gz")), f"{prefix.name}.stage1.bed.gz")
    return [
        "## Chunk-boundary tracks",
        "",
        *listing,
        "",
        "**IGV** (desktop): *Genomes > Load Genome from File* and pick the run's `genome.fa.gz` (its `.fai` "
        "and `.gzi` must sit beside it; for hg38 choose the hosted *Human (hg38)* genome instead), then "
        f"*File > Load from File* `{bigwig}` (boundary probability p_t per base) and `{bed}` (one feature "
        "per chunk; the `.tbi` index must sit beside it).",
        "",
        "**UCSC Genome Browser** (hg38 and other UCSC assemblies only; chromosome names must match): put "
        "the `.bw` / `.bb` files on a web server and add a custom track such as "
        f"`track type=bigWig name=hnet_p bigDataUrl=https://YOUR.HOST/{bigwig}`, or upload the "
        "`.bedGraph` directly for a small region.",
        "",
    ]


def write_report(
    out: str | Path,
    pretrain: str | Path | None = None,
    evaluation: str | Path | None = None,
    markov: str | Path | None = None,
    enrichment: str | Path | None = None,
    tracks: str | Path | None = None,
) -> Path:
    """Write ``out`` (markdown) and its PNGs beside it; every input is optional, absent sections are left out."""
    out = Path(out)
    out_dir = out.parent
    metrics = read_run_metrics(pretrain) if pretrain is not None else None
    evaluated = (read_json(evaluation), Path(evaluation)) if evaluation is not None else None
    reference = (read_json(markov), Path(markov)) if markov is not None else None
    _report_unit(metrics, pretrain, evaluated, reference)
    if enrichment is not None:
        _enrichment_summary(Path(enrichment))
    if tracks is not None:
        _track_files(Path(tracks))  # every input checked before anything is written
    with output_dir(out_dir):
        return _write_report(out, metrics, evaluated, reference, pretrain, enrichment, tracks)


def _report_unit(
    metrics: dict | None, pretrain: str | Path | None, evaluated: tuple | None, reference: tuple | None
) -> str:
    """The unit of the run (or, without one, of the evaluation); the other inputs must count the same."""
    if metrics is not None:
        unit, where = unit_of(metrics, Path(str(pretrain)) / "metrics.json"), f"--pretrain {pretrain}"
    elif evaluated is not None:
        unit, where = unit_of(*evaluated), f"--eval {evaluated[1]}"
    else:
        return "base"
    if evaluated is not None and metrics is not None:
        check_same_unit(unit, where, evaluated[0], evaluated[1], f"--eval {evaluated[1]}")
    if reference is not None:
        check_same_unit(unit, where, reference[0], reference[1], f"--markov {reference[1]}")
    return unit


def _write_report(
    out: Path,
    metrics: dict | None,
    evaluated: tuple | None,
    reference: tuple | None,
    pretrain: str | Path | None,
    enrichment: str | Path | None,
    tracks: str | Path | None,
) -> Path:
    out_dir = out.parent
    name = "model"
    if metrics:
        assert pretrain is not None  # metrics are only read from a pretraining run
        name = str(metrics.get("config", Path(pretrain).name))
    if evaluated is not None and metrics is None:
        name = str(evaluated[0].get("model", name))
    unit = _report_unit(metrics, pretrain, evaluated, reference)
    lines = [f"# Run report: {name}", ""]
    lines += _bpb_section(name, metrics, evaluated, reference, unit)
    if metrics is not None:
        assert pretrain is not None
        references = {"uniform": UNIFORM[unit][1]} | (
            {_reference_label(*reference): bpb_of(*reference)} if reference else {}
        )
        lines += _training_section(metrics, Path(pretrain), out_dir, references, unit)
    if enrichment is not None:
        lines += _enrichment_section(Path(enrichment), out_dir)
    if tracks is not None:
        lines += _tracks_section(Path(tracks), out_dir)
    write_text_atomic(out, "\n".join(lines).rstrip() + "\n")
    return out
