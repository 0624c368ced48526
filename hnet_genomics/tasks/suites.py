"""The standard benchmark suites as typed data: each task's metric, context, classes and strandedness.

The settings live in ``benchmark_suites/<suite>.yaml`` beside this module, with the source of every choice
written next to it; this module reads them into frozen dataclasses and checks every key, so a typo in a
registry file fails the tests rather than a run. A registry file of the same form elsewhere (``--suite
my_suite.yaml``) describes a suite of one's own in either layout; it has no published results to quote and,
with ``fetch: {via: none}``, no download channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hnet_genomics.data.suite_files import LAYOUTS, Layout
from hnet_genomics.errors import ConfigError

SUITE_DIR = Path(__file__).resolve().parent / "benchmark_suites"
SUITES: tuple[str, ...] = ("genomic-benchmarks", "nucleotide-transformer")
METRICS: tuple[str, ...] = ("accuracy", "mcc", "f1_macro")  # keys of metrics.classification_metrics
METRIC_NAMES = {"accuracy": "accuracy", "mcc": "MCC", "f1_macro": "macro F1"}
FETCHERS = ("genomic-benchmarks", "hub", "none")


@dataclass(frozen=True)
class SuiteTask:
    name: str  # the suite's own name: its folder, its download name
    label: str  # as papers print it
    group: str
    metric: str  # one of METRICS
    max_len: int  # bases read per sequence; longer sequences keep their first max_len
    classes: tuple[str, ...]  # every label the task's files may hold, in class-index order
    stranded: bool  # oriented sequences: no reverse-complement test-time averaging


@dataclass(frozen=True)
class FetchSource:
    via: str  # "genomic-benchmarks" (the suite's package), "hub" (Hugging Face Hub dataset) or "none"
    version: int | None = None  # genomic-benchmarks dataset version
    repo: str | None = None  # hub dataset id
    revision: str | None = None  # hub commit
    files: tuple[str, ...] = ()  # hub: the files of each task folder


@dataclass(frozen=True)
class Suite:
    name: str
    title: str
    citation: str
    layout: Layout
    fetch: FetchSource
    tasks: tuple[SuiteTask, ...]

    def task(self, name: str) -> SuiteTask:
        for task in self.tasks:
            if task.name == name:
                return task
        raise ConfigError(
            f"--tasks: '{name}' is not a task of {self.name} (tasks: {', '.join(t.name for t in self.tasks)})"
        )

    def select(self, names: list[str] | None) -> list[SuiteTask]:
        """The named tasks in the suite's order (all of them for None); a repeated or unknown name is an error."""
        if names is None:
            return list(self.tasks)
        wanted = [self.task(n).name for n in names]
        repeated = sorted({n for n in wanted if wanted.count(n) > 1})
        if repeated:
            raise ConfigError(f"--tasks: {', '.join(repeated)} given twice")
        return [t for t in self.tasks if t.name in wanted]


def _keys(data: Any, required: set[str], optional: set[str], where: str) -> dict:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - required - optional)
    missing = sorted(required - set(data))
    if unknown or missing:
        raise ConfigError(f"{where}: unknown keys {unknown}, missing keys {missing}")
    return data


def _task(data: Any, where: str) -> SuiteTask:
    d = _keys(data, {"name", "label", "group", "metric", "max_len", "classes", "stranded"}, set(), where)
    if d["metric"] not in METRICS:
        raise ConfigError(f"{where}: metric '{d['metric']}' is not one of {', '.join(METRICS)}")
    if not isinstance(d["max_len"], int) or d["max_len"] < 1:
        raise ConfigError(f"{where}: max_len must be a positive integer, got {d['max_len']!r}")
    classes = tuple(str(c) for c in d["classes"])
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise ConfigError(f"{where}: classes must be at least two distinct labels, got {list(classes)}")
    if not isinstance(d["stranded"], bool):
        raise ConfigError(f"{where}: stranded must be true or false")
    return SuiteTask(
        str(d["name"]), str(d["label"]), str(d["group"]), d["metric"], d["max_len"], classes, d["stranded"]
    )


def _fetch(data: Any, where: str) -> FetchSource:
    d = _keys(data, {"via"}, {"version", "repo", "revision", "files"}, where)
    if d["via"] == "genomic-benchmarks":
        _keys(d, {"via", "version"}, set(), where)
        return FetchSource("genomic-benchmarks", version=int(d["version"]))
    if d["via"] == "hub":
        _keys(d, {"via", "repo", "revision", "files"}, set(), where)
        return FetchSource("hub", repo=str(d["repo"]), revision=str(d["revision"]), files=tuple(d["files"]))
    if d["via"] == "none":
        _keys(d, {"via"}, set(), where)
        return FetchSource("none")
    raise ConfigError(f"{where}: via '{d['via']}' is not one of {', '.join(FETCHERS)}")


def load_suite(name: str) -> Suite:
    """The registry of a shipped suite (``SUITES``), or of one's own suite from a registry YAML file."""
    if name in SUITES:
        path = SUITE_DIR / f"{name}.yaml"
    elif name.endswith((".yaml", ".yml")):
        path = Path(name)
        if not path.is_file():
            raise ConfigError(f"--suite {name}: no such file")
    else:
        raise ConfigError(
            f"--suite: unknown suite '{name}' (choose from {', '.join(SUITES)}, or give a suite registry .yaml)"
        )
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    d = _keys(data, {"name", "title", "citation", "layout", "fetch", "tasks"}, set(), str(path))
    if path.parent == SUITE_DIR and d["name"] != name:
        raise ConfigError(f"{path}: name '{d['name']}' differs from the file name")
    if path.parent != SUITE_DIR and d["name"] in SUITES:
        raise ConfigError(f"{path}: name '{d['name']}' is a shipped suite's; give your suite another name")
    if not isinstance(d["name"], str) or not d["name"].replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"{path}: name must be letters, digits, '-' and '_', got {d['name']!r}")
    if d["layout"] not in LAYOUTS:
        raise ConfigError(f"{path}: layout '{d['layout']}' is not one of {', '.join(LAYOUTS)}")
    tasks = tuple(_task(t, f"{path}: tasks[{i}]") for i, t in enumerate(d["tasks"]))
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: a task name occurs twice")
    return Suite(
        d["name"], str(d["title"]), str(d["citation"]), d["layout"], _fetch(d["fetch"], f"{path}: fetch"), tasks
    )
