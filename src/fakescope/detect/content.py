"""Is there anything in a picture to judge? Refuses a faceless picture too small or too plain to score.

A 1x1 image, a flat colour or a smooth gradient has no face and no texture: whatever the face
and image models say of it is a guess at a picture that neither was trained on, so such a
picture is `not_applicable` with a reason, like a video with no face, instead of "suspicious".

Texture is measured on a grey thumbnail whose short side is THUMB_SIDE pixels (area
averaging), so the measure sees structure at the scale of the picture, not pixel noise, JPEG
ringing or the blur of an upscaled crop: a flat or smoothly shaded picture has (nearly) no
contrast there and no curvature, a photograph has edges, even a soft, low-contrast one.
The thumbnail is reduced in blocks from the uint8 pixels, without a full-size float copy.
"""

from __future__ import annotations

import cv2
import numpy as np

# Below this side no face can be found (the face detectors' default smallest face is 32 px),
# and a whole-picture model would score an upscaled blur.
MIN_PICTURE_SIDE = 32
THUMB_SIDE = 64
# Grey levels (0-255) on the thumbnail. A picture whose standard deviation is below
# MIN_CONTRAST is one colour to the eye; one whose mean absolute Laplacian is below MIN_DETAIL
# has no edge or texture anywhere (a smooth gradient scores well under it, photographs many
# times over it).
MIN_CONTRAST = 2.0
MIN_DETAIL = 0.5
_GREY = np.array([0.299, 0.587, 0.114], np.float32)


def too_little_content(image: np.ndarray) -> str | None:
    """Why an (H, W, 3) uint8 picture has nothing to judge, or None when it has.

    Meant for pictures in which no face was found: a face is content whatever the background.
    """
    height, width = image.shape[:2]
    if min(height, width) < MIN_PICTURE_SIDE:
        return f"the picture is too small to judge ({width}x{height} px, under {MIN_PICTURE_SIDE} px a side)"
    grey = grey_thumbnail(image)
    if float(grey.std()) < MIN_CONTRAST:
        return "the picture is nearly uniform (one flat colour, or noise without shapes): nothing to judge"
    if detail(grey) < MIN_DETAIL:
        return "the picture has no edges or texture (a flat colour or a smooth gradient): nothing to judge"
    return None


def grey_thumbnail(image: np.ndarray, side: int = THUMB_SIDE) -> np.ndarray:
    """Float32 grey picture with its short side `side` px (area averaged); smaller pictures as they are."""
    height, width = image.shape[:2]
    block = min(height, width) // side
    if block > 1:  # whole blocks first: integer sums of a view, no float copy of the full picture
        rows, cols = height // block, width // block
        sums = image[: rows * block, : cols * block].reshape(rows, block, cols * block, 3).sum(axis=1, dtype=np.uint32)
        small = sums.reshape(rows, cols, block, 3).sum(axis=2).astype(np.float32) / block**2
    else:
        small = image.astype(np.float32)
    grey = np.ascontiguousarray(small @ _GREY)
    scale = side / min(grey.shape)
    if scale < 1:
        size = (max(1, round(grey.shape[1] * scale)), max(1, round(grey.shape[0] * scale)))
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    return grey


def detail(grey: np.ndarray) -> float:
    """Mean absolute 4-neighbour Laplacian (grey levels): zero for flat colour and linear gradients."""
    if min(grey.shape) < 3:
        return 0.0
    lap = 4 * grey[1:-1, 1:-1] - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:]
    return float(np.abs(lap).mean())
