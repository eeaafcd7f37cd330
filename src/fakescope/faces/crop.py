"""Face crops for the classifiers: the same geometry at training and at inference time.

A crop is square and centred on the face box so the face keeps its aspect ratio and
position whatever the face detector's box shape; where the square leaves the image the edge
pixels are repeated (black borders would be a cue a model could learn).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


def _check_image(image: np.ndarray) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"empty image {image.shape}")


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if image.shape[0] == size and image.shape[1] == size:
        return np.ascontiguousarray(image)
    shrinking = image.shape[0] > size or image.shape[1] > size
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(image, (size, size), interpolation=interpolation))


def square_region(box: Sequence[float], margin: float, shift: float = 0.0) -> tuple[int, int, int]:
    """`(x0, y0, side)` of the integer square that `crop_face` cuts (may leave the image)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    long_side = max(x2 - x1, y2 - y1)
    side = long_side * (1.0 + margin)
    if not side > 0:
        raise ValueError(f"box {tuple(box)} with margin {margin} gives an empty crop")
    side_px = max(1, round(side))
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2 + shift * long_side
    return round(cx - side_px / 2), round(cy - side_px / 2), side_px


def center_square(height: int, width: int) -> tuple[int, int, int]:
    """`(x0, y0, side)` of the largest centred square, the region `center_crop` cuts."""
    side = min(height, width)
    return (width - side) // 2, (height - side) // 2, side


def crop_face(image: np.ndarray, box: Sequence[float], *, margin: float, size: int, shift: float = 0.0) -> np.ndarray:
    """Square crop of `max(w, h) * (1 + margin)` around the box centre, resized to `size`.

    `margin=0.3` adds 15% of the box's long side on each side; `shift` moves the centre down
    by that fraction of the long side (to match crops cut lower than the face detector's box).
    Pixels outside the image are edge-replicated. Returns a contiguous `(size, size, 3)` uint8 array.
    """
    _check_image(image)
    height, width = image.shape[:2]
    x0, y0, side = square_region(box, margin, shift)
    x1, y1 = x0 + side, y0 + side
    if x0 >= 0 and y0 >= 0 and x1 <= width and y1 <= height:
        region = image[y0:y1, x0:x1]
    else:
        rows = np.clip(np.arange(y0, y1), 0, height - 1)
        cols = np.clip(np.arange(x0, x1), 0, width - 1)
        region = image[np.ix_(rows, cols)]
    return _resize(region, size)


# A face whose box spans at least this share of the picture's shorter side: the picture is itself a
# face crop (a dataset crop, an aligned portrait), as the face models' training pictures were.
FACE_CROP_FILL = 0.5


def fills_picture(box: Sequence[float], height: int, width: int, *, fill: float = FACE_CROP_FILL) -> bool:
    """True when the picture is itself a face crop: such a picture is scored whole (its centre square),
    the geometry the models were trained on, instead of being cut again around the face inside it."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return max(x2 - x1, y2 - y1) >= fill * min(height, width)


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """The largest centred square resized to `size`: the input for images without a face."""
    _check_image(image)
    x0, y0, side = center_square(*image.shape[:2])
    return _resize(image[y0 : y0 + side, x0 : x0 + side], size)
