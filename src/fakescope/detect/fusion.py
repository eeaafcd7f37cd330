"""Fusing frame scores into identity scores, and identity scores into one media score.

A face swap usually touches one person, and in a clip only some frames show the blending
artefacts clearly; so an identity is scored by the mean of its most suspicious frames, and a
video by its most suspicious identity. The choice (top 50% mean, max over tracks) was compared
with six other rules on the 34 labelled clips (best accuracy, near-best LogLoss): see
benchmarks/fusion_study.py and the README's "Measured" section.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

TOP_FRACTION = 0.5


def track_score(frame_scores: Sequence[float], *, top_fraction: float = TOP_FRACTION) -> float:
    """Mean of the top `top_fraction` of frame scores (at least one frame)."""
    scores = np.sort(np.asarray(frame_scores, dtype=np.float64))[::-1]
    if scores.size == 0:
        raise ValueError("a track needs at least one scored frame")
    k = max(1, int(round(scores.size * top_fraction)))
    return float(scores[:k].mean())


def media_score(track_scores: Sequence[float]) -> float:
    """The most suspicious identity drives the verdict."""
    if len(track_scores) == 0:
        raise ValueError("no identity to score")
    return float(max(track_scores))


def timeline(
    timestamps: Sequence[float], scores: Sequence[float], duration: float, *, step: float = 1.0
) -> list[tuple[float, float, float]]:
    """Per-`step` bins (start, end, max frame score in the bin); bins with no scored frame are left out."""
    t = np.asarray(timestamps, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    bins: list[tuple[float, float, float]] = []
    n_bins = max(1, int(np.ceil(max(duration, float(t.max(initial=0.0)) + 1e-9) / step)))
    for i in range(n_bins):
        start, end = i * step, min((i + 1) * step, max(duration, (i + 1) * step))
        mask = (t >= start) & (t < start + step)
        if mask.any():
            bins.append((round(start, 3), round(end, 3), float(s[mask].max())))
    return bins
