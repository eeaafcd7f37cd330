"""Verdict thresholds chosen on labelled data for a target false-positive / false-negative rate.

A model card stores them so that the verdict bands (authentic < real_below <= suspicious <
fake_at_or_above <= manipulated) carry a measured promise instead of round numbers: on the
set they were chosen on, at most `fpr` of real media is called manipulated and at most `fnr`
of fakes is called authentic (measured_fpr / measured_fnr record what was reached).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from fakescope.errors import FakescopeError

# fpr * n can land a hair below an integer (0.29 * 100 = 28.999...); this keeps the count exact.
_COUNT_SLACK = 1e-9


def _class_scores(labels: Sequence[int], probs: Sequence[float], cls: int, name: str) -> np.ndarray:
    y = np.asarray(labels, dtype=np.int64)
    p = np.asarray(probs, dtype=np.float64)
    if y.shape != p.shape:
        raise FakescopeError(f"thresholds: labels and probs differ in length ({y.size}, {p.size})")
    scores = p[y == cls]
    if scores.size == 0:
        raise FakescopeError(f"thresholds: no {name} samples (label {cls}) to measure the rate on")
    return scores


def _allowed_errors(rate: float, n: int, name: str) -> int:
    if not 0.0 <= rate < 1.0:
        raise FakescopeError(f"thresholds: {name} target must be in [0, 1), got {rate}")
    return math.floor(rate * n + _COUNT_SLACK)


def threshold_for_fpr(labels: Sequence[int], probs: Sequence[float], fpr: float) -> float:
    """Smallest t with share(REAL scores >= t) <= fpr: the lowest "fake" cut keeping FPR on target.

    With k real samples allowed above the cut, t is the next float above the (k+1)-th highest
    real score. Cuts stay in [0, 1] (model cards reject others): if that real scored exactly
    1.0 (a saturated sigmoid), t is 1.0 and misses the target, which the measured FPR shows.
    """
    real = np.sort(_class_scores(labels, probs, 0, "REAL"))[::-1]
    k = _allowed_errors(fpr, real.size, "fpr")
    return float(min(np.nextafter(real[k], np.inf), 1.0))


def threshold_for_fnr(labels: Sequence[int], probs: Sequence[float], fnr: float) -> float:
    """Largest t with share(FAKE scores < t) <= fnr: the highest "real" cut keeping FNR on target.

    With k fakes allowed below the cut, t is the (k+1)-th lowest fake score itself.
    """
    fake = np.sort(_class_scores(labels, probs, 1, "FAKE"))
    k = _allowed_errors(fnr, fake.size, "fnr")
    return float(fake[k])


def verdict_thresholds(
    labels: Sequence[int], probs: Sequence[float], *, fpr: float = 0.05, fnr: float = 0.05
) -> dict[str, float]:
    """Both verdict cuts with the rates they reach on this set; real_below <= fake_at_or_above.

    When the cuts cross (the model cannot meet both targets with a "suspicious" band between
    them), real_below is lowered to fake_at_or_above: no band, and both targets still hold.
    """
    fake_at_or_above = threshold_for_fpr(labels, probs, fpr)
    real_below = min(threshold_for_fnr(labels, probs, fnr), fake_at_or_above)
    real = _class_scores(labels, probs, 0, "REAL")
    fake = _class_scores(labels, probs, 1, "FAKE")
    return {
        "real_below": real_below,
        "fake_at_or_above": fake_at_or_above,
        "fpr_target": float(fpr),
        "fnr_target": float(fnr),
        "measured_fpr": float(np.mean(real >= fake_at_or_above)),
        "measured_fnr": float(np.mean(fake < real_below)),
    }
