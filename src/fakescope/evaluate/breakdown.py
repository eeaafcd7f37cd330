"""Scores per generator family, source, task and language: how a detector does on each kind of fake.

A family usually has fakes only (its reals are the shared ground truth), so its section is
that family's fakes against every real of the set; a value that has both classes (a source
with its own reals) is scored on its own clips. The columns come from labels.csv
(`train.data.Sample.info`), e.g. the speech corpus's `family` and `source`, speech_tts's `task`
(tts, vc, vocoder, codec) and `language`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

BREAKDOWN_COLUMNS = ("family", "method", "source", "task", "language")
MIN_PER_CLASS = 2


def subgroups(
    infos: Sequence[Mapping[str, str]], labels: np.ndarray, probs: np.ndarray, columns: Sequence[str] = BREAKDOWN_COLUMNS
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """`{"family=x": (labels, probs), "source=y": ...}` for every value with enough of both classes."""
    labels, probs = np.asarray(labels), np.asarray(probs)
    real = labels == 0
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for column in columns:
        values = np.array([info.get(column, "") for info in infos])
        for value in sorted(set(values[labels == 1]) - {""}):
            own = values == value
            pick = own if (own & real).sum() >= MIN_PER_CLASS else (own & ~real) | real
            if (labels[pick] == 1).sum() >= MIN_PER_CLASS and (labels[pick] == 0).sum() >= MIN_PER_CLASS:
                out[f"{column}={value}"] = (labels[pick], probs[pick])
    return out
