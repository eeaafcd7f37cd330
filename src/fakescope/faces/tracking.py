"""Group the faces of sampled frames into identities (tracks).

Frames are sampled sparsely (e.g. 32 over 10 s), so a face may move far between samples
and the face detector may miss it in a few: a detection joins a track by box overlap (IoU),
else by centre distance, and a track survives `max_missed` frames without a match.
Scores are later aggregated per track, so one fake face among real ones stays visible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from fakescope.faces.types import Box, Face

try:
    from scipy.optimize import linear_sum_assignment
except ImportError:
    linear_sum_assignment = None


@dataclass
class Detection:
    """One face in one sampled frame; `frame_index` indexes the sampled frames given."""

    frame_index: int
    timestamp: float
    face: Face


@dataclass
class Track:
    """One identity: its detections in frame order."""

    track_id: int
    detections: list[Detection] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.detections)

    @property
    def first_frame(self) -> int:
        return self.detections[0].frame_index

    @property
    def last_frame(self) -> int:
        return self.detections[-1].frame_index

    @property
    def first_timestamp(self) -> float:
        return self.detections[0].timestamp

    @property
    def last_timestamp(self) -> float:
        return self.detections[-1].timestamp

    @property
    def frame_indices(self) -> list[int]:
        return [d.frame_index for d in self.detections]

    @property
    def faces(self) -> list[Face]:
        return [d.face for d in self.detections]

    @property
    def mean_box(self) -> Box:
        n = len(self.detections)
        sums = [sum(d.face.box[k] for d in self.detections) for k in range(4)]
        return (sums[0] / n, sums[1] / n, sums[2] / n, sums[3] / n)

    @property
    def mean_score(self) -> float:
        return sum(d.face.score for d in self.detections) / len(self.detections)


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two `(x1, y1, x2, y2)` boxes (0 when either is empty)."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _affinity(box: Box, face: Face, iou_threshold: float, max_center_distance: float) -> float:
    """How well `face` continues a track last seen at `box`; 0 means it cannot.

    Overlap gives `iou >= iou_threshold`; a centre closer than `max_center_distance` times
    the smaller box's side gives a value below `iou_threshold`, so overlap wins over
    proximity. The smaller side keeps a large false box from capturing a nearby face.
    """
    iou = box_iou(box, face.box)
    if iou >= iou_threshold:
        return iou
    size = min(max(box[2] - box[0], box[3] - box[1]), max(face.width, face.height))
    limit = max_center_distance * size
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    distance = math.hypot(face.center[0] - cx, face.center[1] - cy)
    if limit <= 0 or distance >= limit:
        return 0.0
    return iou_threshold * 0.999 * (1.0 - distance / limit) + 1e-9


def _predicted(track: Track, frame_index: int) -> Box:
    """The last box moved on at the track's last velocity (faces drift between samples)."""
    last = track.detections[-1]
    if len(track.detections) < 2:
        return last.face.box
    before = track.detections[-2]
    steps = last.frame_index - before.frame_index
    ahead = frame_index - last.frame_index
    return tuple(  # type: ignore[return-value]
        b + (b - a) * ahead / steps for a, b in zip(before.face.box, last.face.box, strict=True)
    )


def _match(scores: list[list[float]]) -> list[tuple[int, int]]:
    """Pairs (row, col) maximising total affinity; zero-affinity pairs are never matched."""
    if not scores or not scores[0]:
        return []
    if linear_sum_assignment is not None:
        rows, cols = linear_sum_assignment(scores, maximize=True)
        pairs = zip(rows.tolist(), cols.tolist(), strict=True)
    else:
        ranked = sorted(((s, r, c) for r, row in enumerate(scores) for c, s in enumerate(row)), reverse=True)
        used_rows: set[int] = set()
        used_cols: set[int] = set()
        greedy = []
        for _, r, c in ranked:
            if r not in used_rows and c not in used_cols:
                used_rows.add(r)
                used_cols.add(c)
                greedy.append((r, c))
        pairs = iter(greedy)
    return [(r, c) for r, c in pairs if scores[r][c] > 0]


def track_faces(
    faces_per_frame: Sequence[Sequence[Face]],
    timestamps: Sequence[float],
    *,
    iou_threshold: float = 0.2,
    max_center_distance: float = 0.75,
    max_missed: int = 4,
) -> list[Track]:
    """Link the faces of consecutive sampled frames into tracks, numbered by first appearance.

    A face continues a track when its box overlaps the track's last (or extrapolated) box
    by `iou_threshold`, or when its centre is within `max_center_distance` box sides of it:
    0.75 keeps a person walking towards the camera, sampled every 0.7 s, in one track
    where 0.5 split it in two or three. A face never joins a track that already has a face
    from the same frame. A track unmatched in more than `max_missed` frames in a row is
    closed.
    """
    if len(faces_per_frame) != len(timestamps):
        raise ValueError(f"{len(faces_per_frame)} frames of faces but {len(timestamps)} timestamps")
    tracks: list[Track] = []
    active: list[Track] = []
    for frame_index, (faces, timestamp) in enumerate(zip(faces_per_frame, timestamps, strict=True)):
        active = [t for t in active if frame_index - t.last_frame - 1 <= max_missed]
        scores = [
            [
                max(
                    _affinity(box, face, iou_threshold, max_center_distance)
                    for box in (t.detections[-1].face.box, _predicted(t, frame_index))
                )
                for face in faces
            ]
            for t in active
        ]
        matched: set[int] = set()
        for row, col in _match(scores):
            active[row].detections.append(Detection(frame_index, float(timestamp), faces[col]))
            matched.add(col)
        for col, face in enumerate(faces):
            if col not in matched:
                track = Track(len(tracks), [Detection(frame_index, float(timestamp), face)])
                tracks.append(track)
                active.append(track)
    return tracks


def filter_tracks(tracks: Sequence[Track], *, min_detections: int = 2, min_fraction: float = 0.25) -> list[Track]:
    """Drop spurious tracks (a background patch detected once) and renumber from 0.

    A track stays if it has at least `min_detections` detections and at least
    `min_fraction` of the longest track's; if none would, the longest one stays.
    Tracks come back ordered by first appearance with `track_id` 0..n-1.
    """
    if not tracks:
        return []
    longest = max(len(t) for t in tracks)
    kept = [t for t in tracks if len(t) >= min_detections and len(t) >= min_fraction * longest]
    if not kept:
        kept = [max(tracks, key=len)]
    ordered = sorted(kept, key=lambda t: (t.first_frame, t.track_id))
    return [replace(t, track_id=i, detections=list(t.detections)) for i, t in enumerate(ordered)]
