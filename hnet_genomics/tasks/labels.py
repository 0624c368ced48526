"""Label text -> class index (or float target), fixed by the training split alone.

Class order is the sorted label set (numerically when every label is an integer), never file or directory
order, so the same task read from CSV, FASTA or a Genomic Benchmarks tree gets the same indices and
``classes[1]`` is the positive class of a binary task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from hnet_genomics.data.labelled import LabelledSequences
from hnet_genomics.errors import DataError

TaskKind = Literal["classification", "regression"]


@dataclass(frozen=True)
class LabelSpace:
    kind: TaskKind
    classes: list[str]  # empty for regression

    @property
    def num_outputs(self) -> int:
        return len(self.classes) if self.kind == "classification" else 1

    def encode(self, data: LabelledSequences) -> np.ndarray:
        """Indices (int64) or targets (float32); a label unseen in training is an error naming its record."""
        if self.kind == "regression":
            return np.array(
                [_as_float(lab, origin) for lab, origin in zip(data.labels, data.origins)], dtype=np.float32
            )
        index = {c: i for i, c in enumerate(self.classes)}
        out = np.empty(len(data), dtype=np.int64)
        for i, (lab, origin) in enumerate(zip(data.labels, data.origins)):
            if lab not in index:
                raise DataError(
                    f"{origin}: label '{lab}' does not occur in the training set "
                    f"(training classes: {', '.join(self.classes)})"
                )
            out[i] = index[lab]
        return out


def label_space(train: LabelledSequences, kind: TaskKind = "classification") -> LabelSpace:
    """Classes from the training split; a single-class training set cannot train a classifier."""
    if kind == "regression":
        for lab, origin in zip(train.labels, train.origins):
            _as_float(lab, origin)
        return LabelSpace("regression", [])
    classes = sorted(set(train.labels), key=_sort_key(train.labels))
    if len(classes) < 2:
        raise DataError(
            f"{train.source}: every training sequence has label '{classes[0]}'; a classifier needs at least two classes"
        )
    return LabelSpace("classification", classes)


def _sort_key(labels: list[str]):
    try:
        for lab in set(labels):
            int(lab)
        return int
    except ValueError:
        return str


def _as_float(label: str, origin: str) -> float:
    try:
        value = float(label)
    except ValueError:
        raise DataError(f"{origin}: regression label '{label}' is not a number") from None
    if not np.isfinite(value):
        raise DataError(f"{origin}: regression label '{label}' is not finite")
    return value
