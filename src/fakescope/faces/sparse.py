"""Face detection on every k-th sampled frame; the frames between get their neighbours' faces.

Sampled frames of one clip are close in time (32 over 10 s: 0.31 s apart) and a face moves
little between two of them, so detecting on every `every`-th frame and interpolating the
boxes of faces seen at both ends costs 1/`every` of the face detector's time. Where the two ends
disagree (a face appears, leaves, or moves more than `min_iou` allows), the frames between
are detected too, so a face is never invented or dropped by the interpolation.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from fakescope.constants import DEFAULT_DETECT_EVERY
from fakescope.faces.detectors.base import FaceDetector
from fakescope.faces.tracking import box_iou
from fakescope.faces.types import Face, Point

# Every 2nd frame keeps a face in every frame, with filled-in boxes close to detected ones and
# the same video AUC as detecting all; every 3rd or 4th saves little more for worse boxes, and
# the face model's score moves with the crop (see docs/RESULTS.md, face detectors). A min_iou
# of 0.5 lets a face move a third of its width between two detected frames before the frames
# between are detected too.
DEFAULT_MIN_IOU = 0.5


def detect_sparse(
    face_detector: FaceDetector,
    frames: Sequence[np.ndarray],
    every: int = DEFAULT_DETECT_EVERY,
    *,
    min_iou: float = DEFAULT_MIN_IOU,
) -> list[list[Face]]:
    """Faces per frame of one clip (frames in time order), detecting on every `every`-th and the last.

    Two consecutive detected frames whose faces pair up one to one, each pair overlapping by
    at least `min_iou`, give the frames between linearly interpolated faces (box, landmarks,
    the lower score); any other interval is detected in full, in one more batched call.
    `every=1` detects every frame.
    """
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    if not 0.0 < min_iou <= 1.0:
        raise ValueError(f"min_iou must be in (0, 1], got {min_iou}")
    count = len(frames)
    if every == 1 or count <= 2:
        return face_detector.detect(frames)
    keys = list(range(0, count, every))
    if keys[-1] != count - 1:
        keys.append(count - 1)
    found: dict[int, list[Face]] = dict(zip(keys, face_detector.detect([frames[i] for i in keys]), strict=True))
    undetected: list[int] = []
    for start, stop in itertools.pairwise(keys):
        if stop - start < 2:
            continue
        pairs = pair_faces(found[start], found[stop], min_iou)
        if pairs is None:
            undetected.extend(range(start + 1, stop))
            continue
        for index in range(start + 1, stop):
            weight = (index - start) / (stop - start)
            faces = [interpolate_face(a, b, weight) for a, b in pairs]
            found[index] = sorted(faces, key=lambda f: f.area, reverse=True)
    if undetected:
        found.update(zip(undetected, face_detector.detect([frames[i] for i in undetected]), strict=True))
    return [found[i] for i in range(count)]


def pair_faces(first: Sequence[Face], second: Sequence[Face], min_iou: float) -> list[tuple[Face, Face]] | None:
    """Pairs of the same faces in two frames, best overlap first; None unless every face pairs up."""
    if len(first) != len(second):
        return None
    candidates = sorted(((box_iou(a.box, b.box), i, j) for i, a in enumerate(first) for j, b in enumerate(second)), reverse=True)
    used_first: set[int] = set()
    used_second: set[int] = set()
    pairs = []
    for iou, i, j in candidates:
        if iou < min_iou:
            break
        if i not in used_first and j not in used_second:
            used_first.add(i)
            used_second.add(j)
            pairs.append((first[i], second[j]))
    return pairs if len(pairs) == len(first) else None


def interpolate_face(a: Face, b: Face, weight: float) -> Face:
    """The face `weight` of the way from `a` (0) to `b` (1); landmarks only when both have them."""
    box = tuple(x + (y - x) * weight for x, y in zip(a.box, b.box, strict=True))
    landmarks: tuple[Point, ...] | None = None
    if a.landmarks is not None and b.landmarks is not None and len(a.landmarks) == len(b.landmarks):
        landmarks = tuple(
            (pa[0] + (pb[0] - pa[0]) * weight, pa[1] + (pb[1] - pa[1]) * weight)
            for pa, pb in zip(a.landmarks, b.landmarks, strict=True)
        )
    return Face(box=box, score=min(a.score, b.score), landmarks=landmarks)  # type: ignore[arg-type]
