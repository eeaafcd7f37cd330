"""Card metrics per data folder: two-class folders get full metrics, folders of extra negatives their real recall."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fakescope.data import Sample
from fakescope.train.card import false_alarm_metrics, subgroup_metrics


def sample(i: int, label: int, folder: str) -> Sample:
    return Sample(Path(f"{folder}/{i}.jpg"), label, f"g{i}", "val", {"dataset": folder})


def test_folders_of_reals_only_report_how_many_stay_real():
    samples = [sample(i, i % 2, "swaps") for i in range(20)] + [sample(100 + i, 0, "portraits") for i in range(8)]
    probs = np.array([0.9 if s.label else 0.1 for s in samples[:20]] + [0.2] * 6 + [0.7] * 2)
    out = subgroup_metrics("mixed/val", samples, probs)
    assert out["mixed/val swaps"]["auc"] == pytest.approx(1.0)
    assert out["mixed/val portraits reals"] == {"n": 8, "real_recall": 0.75}


def test_false_alarms_are_the_share_of_each_group_of_reals_at_the_band():
    reals = [
        Sample(Path(f"r{i}.wav"), 0, f"g{i}", "val", info={"dataset": "tts", "language": "pt" if i < 5 else "en"})
        for i in range(10)
    ]
    fakes = [Sample(Path(f"f{i}.wav"), 1, f"h{i}", "val", info={"dataset": "tts", "language": "en"}) for i in range(3)]
    probs = np.array([0.9, 0.1, 0.1, 0.1, 0.1] + [0.1] * 5 + [0.9] * 3)
    out = false_alarm_metrics("tts/val", reals + fakes, probs, band=0.8)
    assert out["tts/val reals dataset=tts"] == {"n": 10, "manipulated": 0.1}
    assert out["tts/val reals language=pt"] == {"n": 5, "manipulated": 0.2}
    assert out["tts/val reals language=en"]["manipulated"] == 0.0
    assert not any("source" in key for key in out), "no column named, no row"
