"""Face thumbnails: each face track at its most suspicious frame, cut from the analysed file.

The worker makes them right after the analysis, from the very pictures the analysis decoded
(`Detector.analyse` hands them forward, in the upright pixels a Result's boxes are given in), so
the file is decoded once and the page can show *which* face drove the verdict without decoding
anything in the browser.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from fakescope.detect.result import FaceTrack
from fakescope.faces.crop import crop_face, square_region

log = logging.getLogger(__name__)

THUMB_SIDE = 160
THUMB_MARGIN = 0.4
JPEG_QUALITY = 85


def best_frame(track: FaceTrack) -> tuple[float, float, list[float]]:
    """(timestamp, score, [x, y, w, h]) of the track's highest-scoring frame."""
    return max(track.frames, key=lambda f: f[1])


def face_thumbnail(image: np.ndarray, box_xywh: Sequence[float]) -> np.ndarray:
    """Square crop around the box with a margin, at most THUMB_SIDE pixels a side."""
    x, y, w, h = (float(v) for v in box_xywh)
    box = (x, y, x + w, y + h)
    _, _, side = square_region(box, THUMB_MARGIN)
    return crop_face(image, box, margin=THUMB_MARGIN, size=min(THUMB_SIDE, side))


def write_thumbnails(
    faces: Sequence[FaceTrack], pictures: Mapping[int, np.ndarray], out_dir: Path, name: str, scale: float = 1.0
) -> list[int]:
    """`out_dir/<track id>.jpg` per face track, cut from `pictures` (its most suspicious frame by track id,
    `Analysis.pictures`, `scale` of their pixels per box pixel: `Analysis.picture_scale`); returns the
    track ids written. One bad track is logged and skipped.

    The pictures are the frames the analysis itself decoded, so each box lands on the very pixels
    it was found in. Decoding again would cost a second pass over the file, and seeking straight to
    a frame is not safe: some clips (examples/fake_ffpp_deepfakes_866_878.mp4) decode to green
    garbage after a seek, which the analysis, decoding them from the start, never saw.
    """
    if not faces or not pictures:
        return []
    written: list[int] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for track in faces:
        try:
            box = [v * scale for v in best_frame(track)[2]]
            _save_jpeg(face_thumbnail(pictures[track.track_id], box), out_dir / f"{int(track.track_id)}.jpg")
            written.append(track.track_id)
        except Exception:
            log.exception("thumbnail of face track %s in %s failed", track.track_id, name)
    return written


def _save_jpeg(pixels: np.ndarray, path: Path) -> None:
    """Write then rename, so a reader never sees half a JPEG."""
    tmp = path.with_suffix(".tmp")
    Image.fromarray(pixels).save(tmp, format="JPEG", quality=JPEG_QUALITY)
    os.replace(tmp, path)
