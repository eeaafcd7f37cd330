"""Face sequences: windows of consecutive face crops of one video, for temporal models.

The crop cache (`crop_cache.extract_face_crops`) keeps one folder per video holding its main
face track, one file per sampled frame named by the frame index. A temporal model needs those
crops in time order and in fixed-length windows, so a long video gives several training items
and every crop is seen; the windows inherit the video's label, group and split, so they never
straddle the split any more than the crops do.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from fakescope.data.samples import Sample, SequenceSample
from fakescope.errors import FakescopeError
from fakescope.models.temporal import window_starts


def face_sequences(crops: Sequence[Sample], *, length: int, stride: int) -> list[SequenceSample]:
    """Windows of `length` consecutive crops of each video, one starting every `stride` crops (models.temporal.window_starts,
    as inference cuts a track).

    Crops are grouped by their folder (one video's track) and ordered by the frame index in the
    file name (numerically: 10 after 9). A track shorter than `length` gives one shorter sequence
    (temporal models mask the padding), and when the windows stop short of the track's end a last
    window ends at its final crop, so every crop is in some sequence. Ordered by video, then start.
    """
    if length < 1 or stride < 1:
        raise FakescopeError(f"sequence length and stride must be at least 1, got length={length}, stride={stride}")
    tracks: dict[Path, list[Sample]] = defaultdict(list)
    for crop in crops:
        tracks[crop.path.parent].append(crop)
    sequences: list[SequenceSample] = []
    for folder in sorted(tracks, key=lambda f: (f.name, str(f))):
        track = _ordered(folder, tracks[folder])
        first = track[0]
        frames = tuple(c.path for c in track)
        for start in window_starts(len(track), length, stride):
            sequences.append(
                SequenceSample(
                    frames=frames[start : start + length],
                    label=first.label,
                    group=first.group,
                    split=first.split,
                    video=folder.name,
                    start=start,
                    info=dict(first.info),
                )
            )
    return sequences


def _ordered(folder: Path, crops: list[Sample]) -> list[Sample]:
    """One folder's crops in frame order, after checking they are one video's (same label, split, group)."""
    for name in ("label", "split", "group"):
        values = {getattr(c, name) for c in crops}
        if len(values) > 1:
            raise FakescopeError(f"{folder}: crops of one video disagree on {name} ({sorted(map(str, values))})")
    indexed: dict[int, Sample] = {}
    for crop in crops:
        index = _frame_index(crop.path)
        if index in indexed:
            raise FakescopeError(f"{folder}: frame {index} appears twice ({indexed[index].path.name}, {crop.path.name})")
        indexed[index] = crop
    return [indexed[i] for i in sorted(indexed)]


def _frame_index(path: Path) -> int:
    try:
        return int(path.stem)
    except ValueError:
        raise FakescopeError(f"{path}: not a crop-cache file (its name must be the frame index, like 12.jpg)") from None
