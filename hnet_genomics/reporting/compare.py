"""Same-data, same-budget comparison of several pretraining runs, each trained with one or more seeds.

Besides final validation and test bpb (mean ± std over seeds), it reports data efficiency the way the H-Net
paper does: how many training bases the reference run (the H-Net) needed to reach each other run's final
validation bpb, as a ratio of that run's bases. Curves are averaged over seeds at the evaluation points all
seeds share, and the crossing is interpolated linearly between evaluations.

Text runs compare the same way in bytes and bits per byte: their keys and labels say ``bytes_seen``,
``flops_per_byte``, ``bytes_per_second`` where a DNA run's say bases (those names are kept for DNA runs). Runs,
test results and a Markov reference of different units are refused: bits per base and per byte are not one scale.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
from pathlib import Path
from typing import Any

from hnet_genomics.atomic import output_dir, write_json_atomic, write_text_atomic
from hnet_genomics.errors import ConfigError, DataError
from hnet_genomics.reporting.report import (
    UNIFORM,
    _fmt,
    _reference_label,
    _table,
    bpb_of,
    check_same_unit,
    history_of,
    plot_bpb_curves,
    read_json,
    read_run_metrics,
    unit_of,
)

Curve = list[tuple[float, float]]


def seed_fields(unit: str) -> tuple[str, ...]:
    """What comparison.json and comparison.csv keep of each seed's metrics.json, under its own key names."""
    return ("params", f"flops_per_{unit}", f"{unit}s_seen", "val_bpb", f"{unit}s_per_second", "compression_ratios")


def _number(metrics: dict[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _curve(metrics: dict[str, Any], run_dir: Path, unit: str) -> Curve:
    """Validation bpb against bases (bytes) seen, ending with the run's final evaluation."""
    points = history_of(metrics, run_dir / "metrics.json")
    final, seen = _number(metrics, "val_bpb"), _number(metrics, f"{unit}s_seen")
    if final is not None and seen is not None and (not points or seen > points[-1][0]):
        points.append((seen, final))
    return points


def mean_curve(curves: list[Curve]) -> Curve:
    """Pointwise mean over seeds at the bases-seen values every seed evaluated at."""
    shared = set.intersection(*(set(x for x, _ in c) for c in curves)) if curves else set()
    return [(x, statistics.fmean(dict(c)[x] for c in curves)) for x in sorted(shared)]


def seed_range(curves: list[Curve]) -> list[tuple[float, float, float]]:
    """(bases seen, lowest, highest) over seeds at the evaluations every seed shares; empty for one seed."""
    if len(curves) < 2:
        return []
    shared = set.intersection(*(set(x for x, _ in c) for c in curves))
    return [(x, min(dict(c)[x] for c in curves), max(dict(c)[x] for c in curves)) for x in sorted(shared)]


def bases_to_reach(curve: Curve, target: float) -> float | None:
    """First bases-seen value where the curve is at or below ``target`` (linear between points), else None."""
    prev = None
    for x, y in curve:
        if y <= target:
            if prev is None or prev[1] == y:
                return x
            (x0, y0) = prev
            return x0 + (x - x0) * (y0 - target) / (y0 - y)
        prev = (x, y)
    return None


def runs_unit(metrics: dict[str, list[dict[str, Any]]], runs: dict[str, list[Path]]) -> str:
    """The one unit every run counts; a DNA run beside a text run is refused naming one of each."""
    seeds = [
        (name, d, unit_of(m, Path(d) / "metrics.json")) for name in runs for d, m in zip(runs[name], metrics[name])
    ]
    first = seeds[0]
    for other in seeds[1:]:
        if other[2] != first[2]:
            raise DataError(
                f"--runs: {first[0]}={first[1]} counts bits per {first[2]} but {other[0]}={other[1]} counts bits "
                f"per {other[2]}; compare runs of one kind (DNA or text)"
            )
    return first[2]


def _spread(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def _pm(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "–"
    return f"{mean:.4f}" + (f" ± {std:.4f}" if std is not None else "")


def summarize(
    runs: dict[str, list[Path]], tests: dict[str, list[Path]] | None = None, reference: str | None = None
) -> dict[str, Any]:
    """Per-run aggregates over seeds plus data efficiency against ``reference``."""
    tests = tests or {}
    if reference is not None and reference not in runs:
        raise ConfigError(f"--reference '{reference}' is not one of the runs ({', '.join(runs)})")
    for name in tests:
        if name not in runs:
            raise ConfigError(f"--test names run '{name}', which has no --runs entry")
    read = {name: [read_run_metrics(d) for d in dirs] for name, dirs in runs.items()}
    unit = runs_unit(read, runs)
    seen, flops, rate = f"{unit}s_seen", f"flops_per_{unit}", f"{unit}s_per_second"
    summary: dict[str, Any] = {"reference": reference, "unit": unit, "runs": {}}
    for name, dirs in runs.items():
        metrics = read[name]
        curves = [_curve(m, Path(d), unit) for m, d in zip(metrics, dirs)]
        val = [v for v in (_number(m, "val_bpb") for m in metrics) if v is not None]
        results = [(read_json(p), p) for p in tests.get(name, [])]
        for result, path in results:
            check_same_unit(unit, "--runs", result, path, f"--test {name}={path}")
        test = [bpb_of(result, path) for result, path in results]
        first = metrics[0]
        per_seed = [
            {"dir": str(d), **{k: m.get(k) for k in seed_fields(unit)}, "test_bpb": t}
            for d, m, t in zip(dirs, metrics, test + [None] * (len(dirs) - len(test)))
        ]
        summary["runs"][name] = {
            "seeds": len(dirs),
            "dirs": [str(d) for d in dirs],
            "params": first.get("params"),
            flops: first.get(flops),
            seen: first.get(seen),
            "val_bpb": val,
            "val_bpb_mean": _spread(val)[0],
            "val_bpb_std": _spread(val)[1],
            "test_bpb": test,
            "test_bpb_mean": _spread(test)[0],
            "test_bpb_std": _spread(test)[1],
            "compression_ratios": first.get("compression_ratios"),
            rate: _spread([v for v in (_number(m, rate) for m in metrics) if v is not None])[0],
            "curve": mean_curve(curves),
            "seed_range": seed_range(curves),
            "per_seed": per_seed,
        }
    if reference is not None:
        ref = summary["runs"][reference]
        for name, run in summary["runs"].items():
            if name == reference or run["val_bpb_mean"] is None or not run[seen]:
                continue
            needed = bases_to_reach(ref["curve"], run["val_bpb_mean"])
            run[f"reference_{unit}s_to_match"] = needed
            run["data_efficiency"] = run[seen] / needed if needed else None
            for key in ("params", flops):
                if isinstance(run[key], (int, float)) and isinstance(ref[key], (int, float)) and ref[key]:
                    run[f"{key}_vs_reference"] = run[key] / ref[key]
    return summary


def compare_runs(
    runs: dict[str, list[Path]],
    out_dir: str | Path,
    tests: dict[str, list[Path]] | None = None,
    reference: str | None = None,
    markov: str | Path | None = None,
) -> dict[str, Path]:
    """comparison.md / .csv / .json and val_bpb.png for runs trained on the same data and budget."""
    summary = summarize(runs, tests, reference)  # every input read before the output folder is made
    unit = summary["unit"]
    seen, flops, rate = f"{unit}s_seen", f"flops_per_{unit}", f"{unit}s_per_second"
    order = sorted(summary["runs"], key=lambda n: summary["runs"][n]["val_bpb_mean"] or math.inf)

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["run", "seed_dir", "params", flops, seen, "val_bpb", "test_bpb", rate, "compression_ratios"])
    for name in order:
        for seed in summary["runs"][name]["per_seed"]:
            keys = ("dir", "params", flops, seen, "val_bpb", "test_bpb", rate)
            cells = ["" if seed[k] is None else seed[k] for k in keys]
            writer.writerow([name, *cells, " ".join(map(str, seed["compression_ratios"] or []))])

    header = [
        "run",
        "seeds",
        "params",
        f"train FLOPs/{unit}",
        f"{unit}s seen",
        "val bpb",
        "test bpb",
        "compression",
        f"{unit}s/s",
    ]
    rows = []
    for name in order:
        r = summary["runs"][name]
        rows.append(
            [
                name,
                r["seeds"],
                r["params"],
                r[flops],
                r[seen],
                _pm(r["val_bpb_mean"], r["val_bpb_std"]),
                _pm(r["test_bpb_mean"], r["test_bpb_std"]),
                r["compression_ratios"],
                r[rate],
            ]
        )
    md = [
        "# Baseline comparison",
        "",
        f"Runs sorted by mean final validation bits per {unit} (lower is better); ± is the standard deviation over "
        "seeds.",
        "",
        _table(header, rows),
        "",
    ]
    if reference is not None:
        eff_rows = []
        for name in order:
            r = summary["runs"][name]
            if name == reference:
                continue
            needed = r.get(f"reference_{unit}s_to_match")
            eff_rows.append(
                [
                    name,
                    r.get("params_vs_reference"),
                    r.get(f"{flops}_vs_reference"),
                    _pm(r["val_bpb_mean"], None),
                    r[seen],
                    needed if needed is not None else "not reached",
                    f"{r['data_efficiency']:.2f}x" if r.get("data_efficiency") else "–",
                ]
            )
        md += [
            f"## Data efficiency of {reference}",
            "",
            f"{unit.capitalize()}s {reference} needed (mean curve over seeds) to reach each run's final validation "
            f"bpb; efficiency = that run's {unit}s / {reference}'s. Above 1: {reference} gets there on fewer {unit}s. "
            f"'not reached': {reference} never got that low within its budget.",
            "",
            _table(
                [
                    "run",
                    "params vs ref",
                    f"FLOPs/{unit} vs ref",
                    "its final val bpb",
                    f"its {unit}s",
                    f"{reference} {unit}s to match",
                    "efficiency",
                ],
                eff_rows,
            ),
            "",
        ]
    uniform = UNIFORM[unit][1]
    references = {"uniform": uniform}
    if markov is not None:
        result = read_json(markov)
        check_same_unit(unit, "--runs", result, markov, f"--markov {markov}")
        references[_reference_label(result, Path(markov))] = bpb_of(result, markov)
        md.append(
            f"Reference: {result.get('model', 'markov')} scores {bpb_of(result, markov):.4f} bpb on the "
            f"{result.get('split', '?')} split ({_fmt(result.get('bases'))} bases)."
        )
        md.append("")
    md.append(f"![validation bpb against {unit}s seen, mean over seeds; shaded: range over seeds](val_bpb.png)")

    with output_dir(out_dir) as out_dir:
        paths = {
            "csv": out_dir / "comparison.csv",
            "md": out_dir / "comparison.md",
            "png": out_dir / "val_bpb.png",
            "json": out_dir / "comparison.json",
        }
        write_text_atomic(paths["csv"], buf.getvalue())
        write_json_atomic(paths["json"], summary)
        plot_bpb_curves(
            {n: summary["runs"][n]["curve"] for n in order},
            references,
            paths["png"],
            "Same data, same budget (mean over seeds)",
            y_max=uniform + 0.05,
            bands={n: summary["runs"][n]["seed_range"] for n in order},
            unit=unit,
        )
        write_text_atomic(paths["md"], "\n".join(md) + "\n")
    return paths


def parse_named_paths(items: list[str], flag: str) -> dict[str, list[Path]]:
    """NAME=PATH arguments; a name given several times collects its seeds in order."""
    named: dict[str, list[Path]] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise ConfigError(f"{flag} expects NAME=PATH, got '{item}'")
        named.setdefault(name, []).append(Path(path))
    return named


def check_seed_counts(runs: dict[str, list[Path]], tests: dict[str, list[Path]]) -> None:
    for name, files in tests.items():
        if name in runs and len(files) != len(runs[name]):
            raise DataError(
                f"--test gives {len(files)} file(s) for '{name}' but --runs gives {len(runs[name])} "
                "seed directories; give one test result per seed, in the same order"
            )
