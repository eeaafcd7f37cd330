"""The face detector contract and what every backend shares: shrink the image, map faces back.

Every face detector first shrinks an image so its long side is at most `max_side`: detection
cost grows with the pixel count while faces worth classifying stay findable at 640 px. Boxes
and landmarks are mapped back to the original pixels, so callers crop from the full-resolution
frame. yuface and MTCNN boxes agree closely enough that the models' crop margins fit either
(see docs/RESULTS.md, face detectors).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from fakescope.faces.types import Face

FACE_DETECTORS = ("yuface", "mtcnn", "haar")


class FaceDetector(Protocol):
    """Finds faces: one list per image, largest face first, boxes in that image's pixels."""

    @property
    def name(self) -> str: ...

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]: ...


@dataclass(frozen=True)
class ScaledImage:
    """An image shrunk for detection and the factors that map its pixels back."""

    image: np.ndarray
    scale_x: float
    scale_y: float
    width: int
    height: int


def check_image(image: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")


def shrink(image: np.ndarray, max_side: int) -> ScaledImage:
    """`image` with its long side at most `max_side` (area interpolation), never enlarged."""
    check_image(image)
    height, width = image.shape[:2]
    factor = max_side / max(height, width)
    if factor >= 1.0:
        return ScaledImage(image, 1.0, 1.0, width, height)
    new_w, new_h = max(1, round(width * factor)), max(1, round(height * factor))
    small = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
    return ScaledImage(small, width / new_w, height / new_h, width, height)


def to_face(
    box: Sequence[float],
    score: float,
    points: np.ndarray | None,
    scaled: ScaledImage,
) -> Face:
    """Map a detection on the shrunk image back to the original and clip it to the image."""
    sx, sy, w, h = scaled.scale_x, scaled.scale_y, scaled.width, scaled.height
    x1, y1, x2, y2 = (float(v) for v in box)
    mapped = (
        min(max(x1 * sx, 0.0), w),
        min(max(y1 * sy, 0.0), h),
        min(max(x2 * sx, 0.0), w),
        min(max(y2 * sy, 0.0), h),
    )
    landmarks = None
    if points is not None:
        landmarks = tuple((min(max(float(px) * sx, 0.0), w), min(max(float(py) * sy, 0.0), h)) for px, py in points)
    return Face(box=mapped, score=float(score), landmarks=landmarks)


def keep_faces(faces: list[Face], *, min_face_size: float, min_score: float) -> list[Face]:
    """Drop weak and small faces (long side below `min_face_size`), largest first."""
    kept = [f for f in faces if f.score >= min_score and max(f.width, f.height) >= min_face_size]
    return sorted(kept, key=lambda f: f.area, reverse=True)
