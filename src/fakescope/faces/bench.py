"""Measure face detectors on labelled clips: recall, seconds per clip's frames, agreement of boxes,
and what detecting on every k-th frame (faces.sparse) keeps of it. Figures are returned, never asserted.

Recall is the share of sampled frames with at least one face: every labelled clip shows one
person's face throughout, so a frame without one is a miss. Frames are sampled as the video
pipeline samples them, at full resolution; each face detector shrinks them itself, so its time is
at its own detection resolution (`max_side`, 640 px by default).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fakescope.faces.detectors.base import FaceDetector
from fakescope.faces.sparse import detect_sparse
from fakescope.faces.tracking import box_iou
from fakescope.faces.types import Face
from fakescope.media import probe, sample_frames

LABELLED_FOLDERS = ("videos", "videos_more")


def labelled_clips(root: Path, folders: Sequence[str] = LABELLED_FOLDERS) -> list[tuple[Path, int]]:
    """(clip, label) for every clip listed in each folder's metadata.json; label 1 = FAKE."""
    clips = []
    for folder in folders:
        meta = json.loads((root / folder / "metadata.json").read_text())
        clips += [(root / folder / name, int(row["label"] == "FAKE")) for name, row in sorted(meta.items())]
    return clips


@dataclass
class FaceDetectorRun:
    """One face detector over the clips: per clip its seconds and its faces per sampled frame."""

    name: str
    seconds: list[float] = field(default_factory=list)
    faces: dict[str, list[list[Face]]] = field(default_factory=dict)

    @property
    def frames(self) -> int:
        return sum(len(per_frame) for per_frame in self.faces.values())

    @property
    def recall(self) -> float:
        found = sum(bool(faces) for per_frame in self.faces.values() for faces in per_frame)
        return found / self.frames if self.frames else 0.0


def run_face_detectors(
    clips: Sequence[Path], face_detectors: Mapping[str, FaceDetector], *, num_frames: int = 32
) -> dict[str, FaceDetectorRun]:
    """Every face detector on the same sampled frames of each clip; the order rotates per clip so
    that a busy spell of a shared machine does not always fall on the same face detector."""
    runs = {name: FaceDetectorRun(name) for name in face_detectors}
    for face_detector in face_detectors.values():
        load = getattr(face_detector, "load", None)
        if callable(load):
            load()
    names = list(face_detectors)
    for position, clip in enumerate(clips):
        images = [frame.image for frame in sample_frames(probe(clip), num_frames)]
        shift = position % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            faces = face_detectors[name].detect(images)
            runs[name].seconds.append(time.perf_counter() - start)
            runs[name].faces[clip.name] = faces
    return runs


def agreement(run: FaceDetectorRun, reference: FaceDetectorRun) -> list[float]:
    """IoU of each frame's largest face with the reference's best-matching face (frames where both found one)."""
    ious = []
    for clip, per_frame in run.faces.items():
        for faces, ref in zip(per_frame, reference.faces.get(clip, []), strict=False):
            if faces and ref:
                ious.append(max(box_iou(faces[0].box, other.box) for other in ref))
    return ious


def face_detector_rows(runs: Mapping[str, FaceDetectorRun], num_frames: int, reference: str | None = None) -> list[dict]:
    """One row per face detector: recall, seconds per `num_frames` frames (mean and median over clips),
    and the median IoU of its boxes with the `reference` face detector's."""
    rows = []
    for run in runs.values():
        per_set = [s * num_frames / len(f) for s, f in zip(run.seconds, run.faces.values(), strict=True) if f]
        row = {
            "detector": run.name,
            "clips": len(run.faces),
            "frames": run.frames,
            "recall": run.recall,
            "mean_s_per_frames": statistics.fmean(per_set) if per_set else None,
            "median_s_per_frames": statistics.median(per_set) if per_set else None,
        }
        if reference is not None and reference in runs and reference != run.name:
            ious = agreement(run, runs[reference])
            row[f"median_iou_vs_{reference}"] = statistics.median(ious) if ious else None
        rows.append(row)
    return rows


class _Replay:
    """Answers from recorded detections by frame number, so a sparse schedule is scored without re-detecting."""

    name = "replay"

    def __init__(self, faces: Sequence[list[Face]]) -> None:
        self.faces = faces
        self.detected = 0

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        self.detected += len(images)
        return [self.faces[int(image[0, 0, 0])] for image in images]


def sparse_rows(run: FaceDetectorRun, everies: Sequence[int], min_ious: Sequence[float]) -> list[dict]:
    """Per (every, min_iou): share of frames detected, recall, and how the filled-in boxes overlap
    the boxes the face detector found on those frames (mean and 5th percentile IoU)."""
    rows = []
    for every in everies:
        for min_iou in min_ious:
            detected = frames = found = 0
            ious: list[float] = []
            for per_frame in run.faces.values():
                tokens = [np.full((1, 1, 3), i, np.uint8) for i in range(len(per_frame))]
                replay = _Replay(per_frame)
                sparse = detect_sparse(replay, tokens, every, min_iou=min_iou)
                detected += replay.detected
                frames += len(per_frame)
                found += sum(bool(faces) for faces in sparse)
                ious += [
                    max(box_iou(f.box, t.box) for t in truth)
                    for filled, truth in zip(sparse, per_frame, strict=True)
                    if filled is not truth and filled and truth
                    for f in filled[:1]
                ]
            rows.append(
                {
                    "every": every,
                    "min_iou": min_iou,
                    "detected_share": detected / frames if frames else 0.0,
                    "recall": found / frames if frames else 0.0,
                    "filled": len(ious),
                    "mean_iou": statistics.fmean(ious) if ious else None,
                    "p5_iou": float(np.percentile(ious, 5)) if ious else None,
                }
            )
    return rows
