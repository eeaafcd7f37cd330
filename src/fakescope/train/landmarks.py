"""Five-point face landmarks for training crops, computed once and cached on disk.

Self-blended images need to know where the face is in every real crop. Running MTCNN on every
crop is slow on a CPU (docs/RESULTS.md, Training crops and training speed), so the points are
kept in a cache keyed by the path string plus the file's size and mtime: a rerun reuses every
unchanged entry and an interrupted run resumes where it stopped.

Training crops are tight (DFDC: 0.8 x the face box), and MTCNN sometimes misses a face that
fills the whole image. A crop with no face is retried once, padded by 25% of its side on each
edge with a mirrored border, which recovers the faces MTCNN missed (same section).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from fakescope.errors import FakescopeError
from fakescope.faces import FaceDetector, create_face_detector
from fakescope.faces.types import Face

log = logging.getLogger(__name__)

PAD_FRACTION = 0.25
_CACHE_VERSION = 1


def _stamp(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _load_cache(cache_file: Path) -> dict[str, dict]:
    if not cache_file.is_file():
        return {}
    try:
        if cache_file.suffix == ".npz":
            return _read_npz(cache_file)
        data = json.loads(cache_file.read_text())
    except (ValueError, KeyError, OSError) as err:
        raise FakescopeError(f"{cache_file}: not a landmark cache ({err}); delete it to recompute") from err
    return data.get("entries", {}) if data.get("version") == _CACHE_VERSION else {}


def _read_npz(cache_file: Path) -> dict[str, dict]:
    with np.load(cache_file, allow_pickle=False) as data:
        if int(data["version"]) != _CACHE_VERSION:
            return {}
        return {
            str(key): {"stamp": stamp.tolist(), "landmarks": None if np.isnan(points).any() else points.tolist()}
            for key, stamp, points in zip(data["keys"], data["stamps"], data["landmarks"], strict=True)
        }


def _save_cache(cache_file: Path, entries: dict[str, dict]) -> None:
    """JSON, or arrays when the name ends in .npz (None stored as NaN); written via a temporary
    file so an interrupted run never leaves a torn cache."""
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_name(cache_file.name + ".tmp")
    if cache_file.suffix == ".npz":
        keys = list(entries)
        points = [entries[k]["landmarks"] for k in keys]
        with tmp.open("wb") as fh:
            np.savez_compressed(
                fh,
                version=np.int64(_CACHE_VERSION),
                keys=np.array(keys, dtype=str),
                stamps=np.array([entries[k]["stamp"] for k in keys], dtype=np.int64).reshape(-1, 2),
                landmarks=np.array([np.full((5, 2), np.nan) if p is None else p for p in points], dtype=np.float32).reshape(
                    -1, 5, 2
                ),
            )
    else:
        tmp.write_text(json.dumps({"version": _CACHE_VERSION, "entries": entries}))
    os.replace(tmp, cache_file)


def _read_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def _central_face(faces: list[Face], width: int, height: int, offset: float) -> np.ndarray | None:
    """Landmarks of the face whose centre is nearest the crop's centre (crops are face-centred).

    `offset` is the padding added around the crop; faces centred in the padding (mirror
    images of the real face) are ignored.
    """
    best, best_dist = None, float("inf")
    for face in faces:
        if face.landmarks is None:
            continue
        cx, cy = face.center[0] - offset, face.center[1] - offset
        if not (0 <= cx < width and 0 <= cy < height):
            continue
        dist = (cx - width / 2) ** 2 + (cy - height / 2) ** 2
        if dist < best_dist:
            best, best_dist = face, dist
    if best is None:
        return None
    return np.asarray(best.landmarks, dtype=np.float32) - np.float32(offset)


def detect_landmarks(images: Sequence[np.ndarray], detector: FaceDetector) -> list[np.ndarray | None]:
    """(5, 2) float32 points (eyes, nose, mouth corners) per crop, in its pixels; None: no face.

    Points may lie slightly outside the crop when the face does.
    """
    found = [
        _central_face(faces, im.shape[1], im.shape[0], 0.0) for im, faces in zip(images, detector.detect(images), strict=True)
    ]
    missed = [i for i, points in enumerate(found) if points is None]
    if missed:
        pads = [round(PAD_FRACTION * max(images[i].shape[:2])) for i in missed]
        padded = [
            cv2.copyMakeBorder(images[i], pad, pad, pad, pad, cv2.BORDER_REFLECT_101) for i, pad in zip(missed, pads, strict=True)
        ]
        for i, pad, faces in zip(missed, pads, detector.detect(padded), strict=True):
            found[i] = _central_face(faces, images[i].shape[1], images[i].shape[0], float(pad))
    return found


def face_landmarks(
    paths: list[Path],
    cache_file: Path,
    *,
    batch_size: int = 32,
    detector: FaceDetector | None = None,
) -> dict[str, np.ndarray | None]:
    """Landmarks for every crop in `paths`, keyed by `str(path)`, reusing `cache_file`.

    Entries whose file size and mtime are unchanged are read from the cache; the others are
    detected with `detector` (MTCNN by default, built only when something is left to do) and
    the cache (JSON, or compressed arrays when `cache_file` ends in .npz) is rewritten after
    every batch, so an interrupted run resumes.
    """
    if batch_size < 1:
        raise FakescopeError(f"batch_size must be >= 1, got {batch_size}")
    entries = _load_cache(cache_file)
    stamps = {str(p): _stamp(p) for p in paths}
    todo = [p for p in paths if entries.get(str(p), {}).get("stamp") != stamps[str(p)]]
    if todo:
        log.info("detecting landmarks in %d of %d crops (cache %s)", len(todo), len(paths), cache_file)
        detector = detector or create_face_detector("mtcnn")
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            for path, points in zip(chunk, detect_landmarks([_read_rgb(p) for p in chunk], detector), strict=True):
                entries[str(path)] = {
                    "stamp": stamps[str(path)],
                    "landmarks": None if points is None else points.round(2).tolist(),
                }
            _save_cache(cache_file, entries)
    return {
        key: None if entries[key]["landmarks"] is None else np.asarray(entries[key]["landmarks"], dtype=np.float32)
        for key in stamps
    }
