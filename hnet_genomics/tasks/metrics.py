"""Test metrics from scikit-learn, and the across-seed summary reported beside them.

Binary tasks report F1 of the positive class (``classes[1]``) and AUROC from its probability; multi-class
tasks report macro F1 and no AUROC. ``f1_macro`` (the unweighted mean of every class's F1) is reported for
both, as the Nucleotide Transformer tasks score their promoter and splice-site tasks. A split holding a single
class has no AUROC or meaningful MCC: AUROC is then omitted rather than invented.
"""

from __future__ import annotations

import numpy as np


def classification_metrics(y_true: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """accuracy, mcc, f1, f1_macro and (binary) auroc from class probabilities (N, C)."""
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef, roc_auc_score

    pred = probs.argmax(axis=1)
    binary = probs.shape[1] == 2
    out = {
        "accuracy": float(accuracy_score(y_true, pred)),
        "mcc": float(matthews_corrcoef(y_true, pred)),
        "f1": float(f1_score(y_true, pred, average="binary" if binary else "macro", zero_division=0)),
        "f1_macro": float(f1_score(y_true, pred, average="macro", labels=list(range(probs.shape[1])), zero_division=0)),
    }
    if binary and len(np.unique(y_true)) == 2:
        out["auroc"] = float(roc_auc_score(y_true, probs[:, 1]))
    return out


def regression_metrics(y_true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """mse, r2, Pearson and Spearman correlation of a scalar target."""
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import mean_squared_error, r2_score

    pred = pred.reshape(-1)
    constant = np.ptp(pred) == 0 or np.ptp(y_true) == 0
    return {
        "mse": float(mean_squared_error(y_true, pred)),
        "r2": float(r2_score(y_true, pred)),
        "pearson": 0.0 if constant else float(pearsonr(y_true, pred)[0]),
        "spearman": 0.0 if constant else float(spearmanr(y_true, pred)[0]),
    }


def summarize_seeds(runs: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and sample standard deviation (ddof=1; 0 for a single seed) of every numeric key all runs share."""
    keys = [
        k
        for k, v in runs[0].items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "seed" and all(k in r for r in runs)
    ]
    mean, std = {}, {}
    for k in keys:
        values = np.array([r[k] for r in runs], dtype=float)
        mean[k] = float(values.mean())
        std[k] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return {"mean": mean, "std": std}


CLASSIFICATION_METRICS = ("accuracy", "mcc", "f1", "f1_macro", "auroc")  # what a validation epoch may be chosen on
