"""A standard benchmark suite, task by task, through the one fine-tuning protocol of ``tasks/finetune.py``.

For each task the two splits are read in the suite's own layout (``data/suite_files.py``), their labels checked
against the registry (``tasks/suites.py``), and the protocol's settings specialised with the task's metric
(which also picks the validation epoch, the seed kept and the k-mer baseline's C), its context (longer
sequences keep their first bases, as the published runs' tokenizers truncate) and its strandedness (no
reverse-complement averaging of oriented sequences). ``run_finetune`` then writes ``OUT/<task>/metrics.json``
and ``OUT/<task>/best/`` atomically.

Resuming: ``metrics.json`` records a ``benchmark`` block holding what makes the result what it is (suite, task,
protocol settings, a fingerprint of the backbone and of the data). A task whose ``metrics.json`` carries the
same block is finished and is not recomputed; one written by a different run is refused rather than replaced.
A task killed midway has no ``metrics.json`` yet and runs again from its first seed.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, NoReturn

from hnet_genomics.data.labelled import LabelledSequences
from hnet_genomics.data.suite_files import read_split, task_present
from hnet_genomics.errors import DataError, OutputError
from hnet_genomics.tasks.finetune import BackboneFactory, FinetuneSettings, prepare_task, run_finetune
from hnet_genomics.tasks.suites import Suite, SuiteTask

# Settings that change where a run happens, not what it computes: a task finished on one device is finished.
_PLACE_ONLY = ("device", "precision")
# What a finished task must share with this run to be reused (the backbone's path and the labels may move).
IDENTITY = ("suite", "task", "metric", "stranded", "settings", "backbone_sha1", "data_sha1", "kmer")


def task_settings(task: SuiteTask, base: FinetuneSettings, max_len_cap: int | None = None) -> FinetuneSettings:
    """The protocol's settings for one task: its metric, its context (optionally capped), its strandedness."""
    max_len = task.max_len if max_len_cap is None else min(task.max_len, max_len_cap)
    return replace(
        base,
        kind="classification",
        select_metric=task.metric,
        max_len=max_len,
        on_long="truncate",
        rc_tta=base.rc_tta and not task.stranded,
    )


def data_fingerprint(*splits: LabelledSequences) -> str:
    """SHA-1 over every sequence and label of the splits, in order: the same files give the same digest."""
    h = hashlib.sha1()
    for split in splits:
        h.update(f"{len(split)}\n".encode())
        for seq, label in zip(split.sequences, split.labels):
            h.update(seq)
            h.update(b"\t" + label.encode() + b"\n")
    return h.hexdigest()


def backbone_fingerprint(model_dir: Path | None, config: dict | None) -> str:
    """SHA-1 of a saved model's files (names and bytes), or of a from-scratch config; '' for none."""
    h = hashlib.sha1()
    if model_dir is not None:
        for path in sorted(p for p in Path(model_dir).rglob("*") if p.is_file()):
            h.update(str(path.relative_to(model_dir)).encode() + b"\0")
            with open(path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    elif config is not None:
        h.update(json.dumps(config, sort_keys=True, default=str).encode())
    else:
        return ""
    return h.hexdigest()


def check_labels(data: LabelledSequences, suite: Suite, task: SuiteTask) -> None:
    """Every label is a class of the task: catches a folder of another task or suite before any training."""
    allowed = set(task.classes)
    for label, origin in zip(data.labels, data.origins):
        if label not in allowed:
            raise DataError(
                f"{origin}: label '{label}' is not a class of {suite.name} task {task.name} "
                f"({', '.join(task.classes)}); is --data the folder of this suite?"
            )


def truncated(data: LabelledSequences, max_len: int | None) -> int:
    return 0 if max_len is None else sum(len(s) > max_len for s in data.sequences)


def record(
    suite: Suite, task: SuiteTask, settings: FinetuneSettings, backbone: str, backbone_id: str, data_id: str, kmer: bool
) -> dict[str, Any]:
    """The ``benchmark`` block of a task's metrics.json: what a finished result must match to be reused."""
    return {
        "suite": suite.name,
        "task": task.name,
        "label": task.label,
        "metric": task.metric,
        "stranded": task.stranded,
        "settings": {k: v for k, v in asdict(settings).items() if k not in _PLACE_ONLY},
        "backbone": backbone,
        "backbone_sha1": backbone_id,
        "data_sha1": data_id,
        "kmer": kmer,
    }


def _read_report(path: Path, fix: str = "") -> Any:
    """A task's metrics.json as parsed (None when there is none); an unreadable one is a one-line error."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise OutputError(f"{path}: unreadable ({e}){fix}") from None


def finished(task_dir: Path, expected: dict[str, Any]) -> dict | None:
    """The task's earlier report if it was computed exactly as ``expected``; None if there is none; an error
    naming the first difference if it came from another run."""
    path = task_dir / "metrics.json"
    report = _read_report(path, "; remove it to run the task again")
    if report is None:
        return None
    earlier = report.get("benchmark") if isinstance(report, dict) else None
    if not isinstance(earlier, dict):
        raise OutputError(f"{path}: not written by `hnet-genomics benchmark`; choose another --out")
    for key in IDENTITY:
        value = expected[key]
        if key == "settings" and isinstance(earlier.get(key), dict):
            for k, v in value.items():
                if earlier[key].get(k) != v:
                    _refuse(path, f"settings.{k}", earlier[key].get(k), v)
        elif earlier.get(key) != value:
            _refuse(path, key, earlier.get(key), value)
    return report


def _refuse(path: Path, key: str, earlier: Any, now: Any) -> NoReturn:
    raise OutputError(
        f"{path}: holds a result of another run ({key} {earlier!r} there, {now!r} now); choose another --out "
        f"or remove {path.parent} to recompute it"
    )


def missing_tasks(suite: Suite, tasks: list[SuiteTask], data_dir: Path) -> list[SuiteTask]:
    return [t for t in tasks if not task_present(data_dir / t.name, suite.layout)]


def run_task(
    suite: Suite,
    task: SuiteTask,
    data_dir: Path,
    out_dir: Path,
    base: FinetuneSettings,
    make_backbone: BackboneFactory | None,
    backbone: str,
    backbone_id: str,
    run_kmer: bool,
    max_len_cap: int | None = None,
    log: Callable[[str], None] = print,
    progress: bool = False,
) -> tuple[dict, bool]:
    """One task: (its report, whether it was computed now rather than found finished)."""
    t0 = time.perf_counter()
    train = read_split(data_dir / task.name, "train", suite.layout)
    test = read_split(data_dir / task.name, "test", suite.layout)
    for split in (train, test):
        check_labels(split, suite, task)
    settings = task_settings(task, base, max_len_cap)
    expected = record(suite, task, settings, backbone, backbone_id, data_fingerprint(train, test), run_kmer)
    task_dir = out_dir / task.name
    earlier = finished(task_dir, expected)
    if earlier is not None:
        log(f"{task.name}: finished earlier ({task_dir / 'metrics.json'}), not recomputed")
        return earlier, False
    cut = {"train": truncated(train, settings.max_len), "test": truncated(test, settings.max_len)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # truncation is the suite's policy; it is counted in the report instead
        data = prepare_task(train, test, settings)
    if cut["train"] or cut["test"]:
        log(f"{task.name}: {cut['train']} train and {cut['test']} test sequences cut to {settings.max_len} bp")
    report = run_finetune(
        data,
        settings,
        task_dir,
        make_backbone,
        run_kmer,
        description={"backbone": backbone},
        log=lambda line: log(f"{task.name}: {line}"),
        progress=progress,
        report_extra={"benchmark": expected | {"truncated": cut}},
    )
    log(f"{task.name}: done in {time.perf_counter() - t0:.0f}s")
    return report, True


def read_task_report(out_dir: Path, suite: Suite, task: SuiteTask) -> dict | None:
    """A finished task's report under ``out_dir`` (None when the task has not finished there)."""
    path = out_dir / task.name / "metrics.json"
    report = _read_report(path)
    if report is None:
        return None
    block = report.get("benchmark") if isinstance(report, dict) else None
    if not isinstance(block, dict) or block.get("suite") != suite.name or block.get("task") != task.name:
        raise OutputError(f"{path}: not a {suite.name} result for task {task.name}")
    return report
