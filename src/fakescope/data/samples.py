"""What a labelled item is: the label map, the split names and the sample types every reader returns.

A group is what must never straddle the split: the source video (a real video and every fake
made from it), a speaker, or the file itself when nothing better is known.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

LABELS = {"REAL": 0, "FAKE": 1}
SPLITS = ("train", "val")


@dataclass(frozen=True)
class Sample:
    """One labelled file; `info` keeps the other labels.csv columns (source, generator, family, ...)."""

    path: Path
    label: int
    group: str
    split: str
    info: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class VideoSample:
    """A labelled video; `group` is its source real video, shared by the fakes made from it; `dataset` the
    collection metadata.json names it from (the labelled clips mix FF++, DFD and DFDC), if it does."""

    path: Path
    label: int
    group: str
    split: str | None = None
    dataset: str | None = None


@dataclass(frozen=True)
class SequenceSample:
    """Consecutive face crops of one track of one video, in time order, for temporal models.

    `video` is the crops' folder name (the video stem), `start` the index of the first crop within
    its track; label, group, split and `info` are the video's, as its crops carry them.
    """

    frames: tuple[Path, ...]
    label: int
    group: str
    split: str
    video: str
    start: int
    info: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


T = TypeVar("T", Sample, VideoSample)
