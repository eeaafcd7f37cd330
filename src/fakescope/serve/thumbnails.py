"""Face thumbnails: each face track at its most suspicious frame, cut from the analysed file.

The worker makes them right after the analysis, from the same bytes and the same upright
pixels the boxes refer to (a Result's boxes are in pixels of the upright frame), so the
page can show *which* face drove the verdict without decoding anything in the browser.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from fakescope.detect.result import FaceTrack
from fakescope.faces.crop import crop_face, square_region
from fakescope.media.image import load_image
from fakescope.media.video import sample_frames

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


def write_thumbnails(media_path: Path, media_type: str | None, faces: Sequence[FaceTrack], out_dir: Path,
                     num_frames: int) -> list[int]:
    """`out_dir/<track id>.jpg` per face track; returns the track ids written. One bad track is logged and skipped.

    A video's frames are sampled again exactly as the analysis sampled them (`num_frames`, same
    strategy), so each box lands on the very pixels it was found in. Seeking straight to a
    frame is not safe: some clips (examples/fake_ffpp_deepfakes_866_878.mp4) decode to green
    garbage after a seek, which the analysis, decoding them from the start, never saw.
    """
    if media_type not in ("image", "video") or not faces:
        return []
    if media_type == "image":
        image = load_image(media_path)
        pictures = {track.track_id: image for track in faces}
    else:
        frames = sample_frames(media_path, num_frames)
        pictures = {track.track_id: min(frames, key=lambda f: abs(f.timestamp - best_frame(track)[0])).image
                    for track in faces if track.frames}
    written: list[int] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for track in faces:
        try:
            _save_jpeg(face_thumbnail(pictures[track.track_id], best_frame(track)[2]), out_dir / f"{int(track.track_id)}.jpg")
            written.append(track.track_id)
        except Exception:  # noqa: BLE001 - a missing thumbnail must never fail the analysis
            log.exception("thumbnail of face track %s in %s failed", track.track_id, media_path.name)
    return written


def _save_jpeg(pixels: np.ndarray, path: Path) -> None:
    """Write then rename, so a reader never sees half a JPEG."""
    tmp = path.with_suffix(".tmp")
    Image.fromarray(pixels).save(tmp, format="JPEG", quality=JPEG_QUALITY)
    os.replace(tmp, path)
