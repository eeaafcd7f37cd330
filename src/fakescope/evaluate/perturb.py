"""Named image perturbations for robustness checks: `fakescope eval --perturb jpeg70`.

A detector that only reads compression history or pixel-level noise collapses once the
picture is re-saved or resized, as every upload pipeline does; these reproduce that.
Each is applied to the file's own pixels, before the model's resize.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable

from PIL import Image, ImageFilter

from fakescope.errors import FakescopeError

Perturbation = Callable[[Image.Image], Image.Image]
SPEC = re.compile(r"^(jpeg|resize|blur)(\d+(?:\.\d+)?)$")


def jpeg(quality: int) -> Perturbation:
    def apply(image: Image.Image) -> Image.Image:
        buf = io.BytesIO()
        image.convert("RGB").save(buf, format="JPEG", quality=quality)
        return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")

    return apply


def resize(factor: float) -> Perturbation:
    def apply(image: Image.Image) -> Image.Image:
        size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
        return image.resize(size, Image.Resampling.BICUBIC)

    return apply


def blur(sigma: float) -> Perturbation:
    return lambda image: image.filter(ImageFilter.GaussianBlur(sigma))


def parse_perturbation(spec: str) -> Perturbation:
    """`jpeg70` (re-save at quality 70), `resize0.5` (scale by 0.5), `blur1.5` (Gaussian sigma 1.5)."""
    match = SPEC.match(spec.strip().lower())
    if not match:
        raise FakescopeError(f"unknown perturbation {spec!r}: use jpegQ (1-95), resizeF (0.05-4) or blurS, e.g. jpeg70")
    kind, value = match.group(1), float(match.group(2))
    if kind == "jpeg":
        if not 1 <= value <= 95:
            raise FakescopeError(f"perturbation {spec!r}: JPEG quality must be 1-95")
        return jpeg(int(value))
    if kind == "resize":
        if not 0.05 <= value <= 4:
            raise FakescopeError(f"perturbation {spec!r}: resize factor must be 0.05-4")
        return resize(value)
    return blur(value)
