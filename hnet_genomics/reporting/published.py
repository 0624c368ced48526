"""Published benchmark results, quoted with their source, as typed data for the benchmark tables.

The numbers live in ``published/<suite>.yaml`` beside this module, as printed in their source; this module
reads and checks them. A number printed as a percentage becomes a fraction by moving the decimal point (85.1 ->
0.851, exactly, through ``Decimal``): nothing is recomputed, rounded or averaged.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from hnet_genomics.errors import ConfigError

PUBLISHED_DIR = Path(__file__).resolve().parent / "published"


@dataclass(frozen=True)
class Source:
    key: str
    citation: str
    table: str  # where in the source: "Table 1"
    url: str
    unit: str  # "fraction" or "percent", as printed
    spread: str | None  # what the source's "±" means, None when it prints none
    protocol: str


@dataclass(frozen=True)
class Quoted:
    value: float  # as a fraction
    spread: float | None  # the source's "±", as a fraction
    printed: str  # exactly as the source prints it: "85.1", "0.780 ± 0.025"


@dataclass(frozen=True)
class PublishedColumn:
    model: str
    source: Source | None  # None: no published result found for this model on this suite (an empty column)
    results: dict[str, Quoted]  # task name -> quoted result; tasks the source does not report are absent


@dataclass(frozen=True)
class Published:
    suite: str
    sources: dict[str, Source]
    columns: tuple[PublishedColumn, ...]
    not_quoted: tuple[str, ...]  # why some cells stay empty


def _mapping(data: Any, required: set[str], where: str) -> dict:
    if not isinstance(data, dict) or set(data) != required:
        got = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise ConfigError(f"{where}: expected the keys {sorted(required)}, got {got}")
    return data


def _fraction(number: Any, unit: str, where: str) -> float:
    if isinstance(number, bool) or not isinstance(number, (int, float)):
        raise ConfigError(f"{where}: {number!r} is not a number")
    exact = Decimal(str(number))
    return float(exact / 100 if unit == "percent" else exact)


def _quoted(cell: Any, source: Source, where: str) -> Quoted:
    if not isinstance(cell, list) or len(cell) not in (1, 2):
        raise ConfigError(f"{where}: expected [value] or [value, spread], got {cell!r}")
    if len(cell) == 2 and source.spread is None:
        raise ConfigError(f"{where}: a spread is given but source '{source.key}' prints none")
    value = _fraction(cell[0], source.unit, where)
    spread = _fraction(cell[1], source.unit, where) if len(cell) == 2 else None
    limit = 100.0 if source.unit == "percent" else 1.0
    if not -limit <= cell[0] <= limit:
        raise ConfigError(f"{where}: {cell[0]} is outside the metric's range for unit {source.unit}")
    printed = f"{cell[0]} ± {cell[1]}" if len(cell) == 2 else f"{cell[0]}"
    return Quoted(value, spread, printed)


def load_published(suite: str) -> Published:
    """The quoted results of ``suite`` (a file in ``published/``); unknown keys and bad numbers are errors."""
    path = PUBLISHED_DIR / f"{suite}.yaml"
    if not path.is_file():
        raise ConfigError(f"no published results for suite '{suite}' ({path} is missing)")
    d = _mapping(yaml.safe_load(path.read_text()), {"suite", "sources", "columns", "not_quoted"}, str(path))
    if d["suite"] != suite:
        raise ConfigError(f"{path}: suite '{d['suite']}' differs from the file name")
    sources: dict[str, Source] = {}
    for key, s in d["sources"].items():
        s = _mapping(s, {"citation", "table", "url", "unit", "spread", "protocol"}, f"{path}: sources.{key}")
        if s["unit"] not in ("fraction", "percent"):
            raise ConfigError(f"{path}: sources.{key}.unit must be fraction or percent")
        sources[key] = Source(key, s["citation"], s["table"], s["url"], s["unit"], s["spread"], s["protocol"])
    columns = []
    for i, c in enumerate(d["columns"]):
        where = f"{path}: columns[{i}]"
        c = _mapping(c, {"model", "source", "results"}, where)
        if c["source"] is None:  # a model the sources do not report on this suite: its column stays empty
            if c["results"]:
                raise ConfigError(f"{where}: results without a source")
            columns.append(PublishedColumn(str(c["model"]), None, {}))
            continue
        if c["source"] not in sources:
            raise ConfigError(f"{where}: unknown source '{c['source']}' (sources: {', '.join(sources)})")
        src = sources[c["source"]]
        results = {str(t): _quoted(v, src, f"{where}.results.{t}") for t, v in c["results"].items()}
        columns.append(PublishedColumn(str(c["model"]), src, results))
    return Published(suite, sources, tuple(columns), tuple(str(n) for n in d["not_quoted"] or ()))
