"""Classical reference: k-mer count profiles + logistic regression.

Every neural result is reported beside this baseline because on short TF-binding-site tasks motif counts
alone are strong; a DNA language model that does not beat them has learned nothing the task needs.
Windows containing a non-ACGT code are skipped rather than mapped to a made-up k-mer.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from hnet_genomics.data.encoding import reverse_complement

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

_CODE = np.full(256, 255, dtype=np.uint8)
for _i, _b in enumerate(b"ACGT"):
    _CODE[_b] = _i
    _CODE[ord(chr(_b).lower())] = _i


def kmer_counts(seqs: list[bytes], k: int = 6) -> np.ndarray:
    """(N, 4**k) float32 counts of every overlapping ACGT k-mer (case-insensitive)."""
    out = np.zeros((len(seqs), 4**k), dtype=np.float32)
    weights = 4 ** np.arange(k - 1, -1, -1, dtype=np.int64)
    for i, s in enumerate(seqs):
        if len(s) < k:
            continue
        codes = _CODE[np.frombuffer(s, dtype=np.uint8)]
        windows = np.lib.stride_tricks.sliding_window_view(codes, k)
        valid = (windows != 255).all(axis=1)
        index = windows[valid].astype(np.int64) @ weights
        out[i] = np.bincount(index, minlength=4**k)
    return out


class KmerLogisticRegression:
    """k-mer frequencies -> standardised -> L2 logistic regression; C picked on the validation split by
    ``select_metric`` (a key of ``metrics.classification_metrics``)."""

    def __init__(
        self,
        k: int = 6,
        c_grid: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 1e-1, 1.0),
        seed: int = 0,
        select_metric: str = "accuracy",
    ):
        self.k, self.c_grid, self.seed, self.select_metric = k, c_grid, seed, select_metric
        self.model: Pipeline | None = None
        self.c: float | None = None

    def _features(self, seqs: list[bytes]) -> np.ndarray:
        counts = kmer_counts(seqs, self.k)
        return counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)

    def fit(self, train_seqs: list[bytes], y_train: np.ndarray, val_seqs: list[bytes], y_val: np.ndarray) -> float:
        """Fit one model per C, keep the best on the validation metric; returns that score."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        from hnet_genomics.tasks.metrics import classification_metrics

        x_train, x_val = self._features(train_seqs), self._features(val_seqs)
        best = -math.inf
        for c in self.c_grid:
            model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000, random_state=self.seed))
            model.fit(x_train, y_train)
            score = classification_metrics(y_val, model.predict_proba(x_val))[self.select_metric]
            if score > best:
                best, self.model, self.c = score, model, c
        return best

    def predict_proba(self, seqs: list[bytes], rc_tta: bool = False) -> np.ndarray:
        """(N, C) class probabilities; with ``rc_tta`` the mean over both strands."""
        if self.model is None:
            raise RuntimeError("KmerLogisticRegression.predict_proba called before fit")
        probs = self.model.predict_proba(self._features(seqs))
        if rc_tta:
            probs = (probs + self.model.predict_proba(self._features([reverse_complement(s) for s in seqs]))) / 2
        return probs
