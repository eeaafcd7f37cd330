"""One metric set for every detector (DFDC LogLoss, ROC-AUC, accuracy, precision, recall).

Labels follow one convention everywhere: REAL = 0, FAKE = 1, scores are P(fake).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn import metrics as skm

# DFDC clipped predictions to this range when computing LogLoss; we do the same.
LOGLOSS_EPS = 1e-7


def log_loss(labels: Sequence[int], probs: Sequence[float]) -> float:
    y = np.asarray(labels, dtype=np.float64)
    p = np.clip(np.asarray(probs, dtype=np.float64), LOGLOSS_EPS, 1 - LOGLOSS_EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def expected_calibration_error(labels: Sequence[int], probs: Sequence[float], *, bins: int = 10) -> float:
    """Mean |confidence - observed fake rate| over equal-width P(fake) bins, weighted by bin size."""
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(probs, dtype=np.float64)
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    return float(sum(abs(p[which == b].mean() - y[which == b].mean()) * np.mean(which == b)
                     for b in range(bins) if np.any(which == b)))


def binary_metrics(labels: Sequence[int], probs: Sequence[float], *, threshold: float = 0.5) -> dict[str, float]:
    """LogLoss, AUC, accuracy, precision and recall (of FAKE) at `threshold`, real recall, ECE."""
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    if y.size == 0:
        raise ValueError("no samples to score")
    pred = (p >= threshold).astype(np.int64)
    both_classes = len(np.unique(y)) == 2
    return {
        "n": int(y.size),
        "logloss": log_loss(y, p),
        "auc": float(skm.roc_auc_score(y, p)) if both_classes else float("nan"),
        "accuracy": float(skm.accuracy_score(y, pred)),
        "precision": float(skm.precision_score(y, pred, zero_division=0)),
        "recall": float(skm.recall_score(y, pred, zero_division=0)),
        "real_recall": float(skm.recall_score(1 - y, 1 - pred, zero_division=0)),
        "ece": expected_calibration_error(y, p),
    }
