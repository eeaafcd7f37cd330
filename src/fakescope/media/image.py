"""Load any still image as upright 8-bit RGB, the one layout the face and model code accept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from fakescope.errors import CorruptMediaError, UnsupportedMediaError
from fakescope.media.limits import DEFAULT_LIMITS, MediaLimits
from fakescope.media.messages import error_reason
from fakescope.media.probe import CheckedFile, MediaInfo, check_file, open_image
from fakescope.media.sniff import sniff_kind

_WHITE = (255, 255, 255, 255)


def load_image(path: str | Path, limits: MediaLimits = DEFAULT_LIMITS, *, info: MediaInfo | None = None) -> np.ndarray:
    """(H, W, 3) uint8 RGB C-contiguous array, EXIF orientation applied.

    Transparent pixels are composited on white (a neutral background for face detectors);
    16-bit and float images are scaled to 8 bits rather than clipped. Animated images give
    their first frame. The pixel limit is checked from the header, before decoding. Pass
    `info` when the file was probed already (as the Detector does): it is not checked and
    sniffed twice.
    """
    if info is not None and info.kind == "image":
        file, fmt = CheckedFile(str(path), info.path, info.size_bytes, b""), info.format
    else:
        file = check_file(path, limits)
        sniffed = sniff_kind(file.head)
        if sniffed is None:
            raise UnsupportedMediaError(f"{file.name}: unsupported file type (not an image, video or audio file)")
        kind, fmt = sniffed
        if kind != "image":
            raise UnsupportedMediaError(f"{file.name}: not an image ({kind} file)")
    with open_image(file, fmt, limits) as image:
        try:
            image.load()
            upright = ImageOps.exif_transpose(image) or image
            rgb = to_rgb_array(upright)
        except Exception as err:  # Pillow raises OSError, SyntaxError, ValueError... on damaged data
            raise CorruptMediaError(f"{file.name}: corrupt or truncated image ({error_reason(err)})") from err
    return rgb


def to_rgb_array(image: Image.Image) -> np.ndarray:
    """Convert a Pillow image of any mode to an (H, W, 3) uint8 RGB array."""
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        gray = _scale_to_uint8(np.asarray(image))
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, _WHITE)
        image = Image.alpha_composite(background, rgba)
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))


def _scale_to_uint8(values: np.ndarray) -> np.ndarray:
    """Map 16-bit, 32-bit or float samples to 0-255 keeping their relative brightness."""
    if values.dtype.kind == "f":
        data = np.nan_to_num(values.astype(np.float64))
        top = 1.0 if data.max(initial=0.0) <= 1.0 else 255.0
        return (np.clip(data / top, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    data = values.astype(np.int64)
    top = 65535 if data.max(initial=0) > 255 or values.dtype.itemsize == 2 else 255
    return ((np.clip(data, 0, top) * 255 + top // 2) // top).astype(np.uint8)


def resize_whole(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """The whole RGB picture resized to (height, width), aspect ratio not kept, antialiased bicubic (PIL).

    AI-generation traces are spread over the whole content, so nothing is cropped away.
    Inference and training (`train.data.load_rgb`) both resize through here, so a model sees
    at inference exactly the pixels it was trained on.
    """
    if image.shape[:2] == (height, width):
        return np.ascontiguousarray(image)
    resized = Image.fromarray(image).resize((width, height), Image.Resampling.BICUBIC)
    return np.asarray(resized, dtype=np.uint8)
