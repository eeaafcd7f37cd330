"""One metric set for every detector (DFDC LogLoss, ROC-AUC, EER, accuracy, precision, recall).

Labels follow one convention everywhere: REAL = 0, FAKE = 1, scores are P(fake).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

import numpy as np
from sklearn import metrics as skm

from fakescope.errors import FakescopeError

# DFDC clipped predictions to this range when computing LogLoss; we do the same.
LOGLOSS_EPS = 1e-7

REDUCERS: dict[str, Callable[[np.ndarray], float]] = {
    "mean": lambda p: float(np.mean(p)),
    "median": lambda p: float(np.median(p)),
    "max": lambda p: float(np.max(p)),
}


def log_loss(labels: Sequence[int], probs: Sequence[float]) -> float:
    y = np.asarray(labels, dtype=np.float64)
    p = np.clip(np.asarray(probs, dtype=np.float64), LOGLOSS_EPS, 1 - LOGLOSS_EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def calibration_bins(
    labels: Sequence[int], probs: Sequence[float], *, bins: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width P(fake) bin: mean score, observed fake rate, count (NaN rates for empty bins).

    Shared by the ECE and the reliability diagram so that the plot shows what the number measures.
    """
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(probs, dtype=np.float64)
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    counts = np.bincount(which, minlength=bins)[:bins]
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(which, weights=p, minlength=bins)[:bins] / counts
        fake_rate = np.bincount(which, weights=y, minlength=bins)[:bins] / counts
    return confidence, fake_rate, counts


def expected_calibration_error(labels: Sequence[int], probs: Sequence[float], *, bins: int = 10) -> float:
    """Mean |confidence - observed fake rate| over equal-width P(fake) bins, weighted by bin size."""
    confidence, fake_rate, counts = calibration_bins(labels, probs, bins=bins)
    used = counts > 0
    return float(np.sum(np.abs(confidence[used] - fake_rate[used]) * counts[used]) / counts.sum())


def equal_error_rate(labels: Sequence[int], probs: Sequence[float]) -> float:
    """The error rate where FPR == FNR, interpolated linearly between ROC points (NaN with one class).

    The ROC curve is piecewise linear between its points, and along it FPR rises while FNR
    falls from the first point (FPR 0, FNR 1), so the crossing lies on the first segment
    where FNR - FPR changes sign.
    """
    y = np.asarray(labels, dtype=np.int64)
    if len(np.unique(y)) != 2:
        return float("nan")
    fpr, tpr, _ = skm.roc_curve(y, np.asarray(probs, dtype=np.float64), drop_intermediate=False)
    gap = (1.0 - tpr) - fpr
    i = int(np.argmax(gap <= 0))
    if gap[i] == 0:
        return float(fpr[i])
    share = gap[i - 1] / (gap[i - 1] - gap[i])
    return float(fpr[i - 1] + share * (fpr[i] - fpr[i - 1]))


def binary_metrics(labels: Sequence[int], probs: Sequence[float], *, threshold: float = 0.5) -> dict[str, float]:
    """LogLoss, AUC, EER, accuracy, precision and recall (of FAKE) at `threshold`, real recall, ECE."""
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
        "eer": equal_error_rate(y, p),
        "accuracy": float(skm.accuracy_score(y, pred)),
        "precision": float(skm.precision_score(y, pred, zero_division=0)),
        "recall": float(skm.recall_score(y, pred, zero_division=0)),
        "real_recall": float(skm.recall_score(1 - y, 1 - pred, zero_division=0)),
        "ece": expected_calibration_error(y, p),
    }


def video_level(
    labels: Sequence[int],
    probs: Sequence[float],
    groups: Sequence[Hashable],
    reduce: str | Callable[[np.ndarray], float] = "mean",
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """One row per group (video), in order of first appearance, scored by `reduce` over its rows.

    `reduce` is "mean", "median", "max" or any function of the group's scores, e.g.
    `fakescope.detect.fusion.track_score` to match what `detect` does for one identity.
    """
    if not (len(labels) == len(probs) == len(groups)):
        raise FakescopeError(
            f"video_level: labels, probs and groups differ in length ({len(labels)}, {len(probs)}, {len(groups)})"
        )
    if isinstance(reduce, str):
        if reduce not in REDUCERS:
            raise FakescopeError(f"video_level: unknown reduce {reduce!r} (choose from {', '.join(REDUCERS)})")
        reduce = REDUCERS[reduce]
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    rows: dict[Hashable, list[int]] = {}
    for i, group in enumerate(groups):
        rows.setdefault(group, []).append(i)
    out_y, out_p = [], []
    for group, idx in rows.items():
        group_labels = np.unique(y[idx])
        if group_labels.size != 1:
            raise FakescopeError(f"video_level: group {group!r} mixes labels {group_labels.tolist()}")
        out_y.append(int(group_labels[0]))
        out_p.append(float(reduce(p[idx])))
    return np.asarray(out_y, dtype=np.int64), np.asarray(out_p, dtype=np.float64), [str(g) for g in rows]
