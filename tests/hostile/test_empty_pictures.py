"""Pictures with nothing to judge are not_applicable, not "suspicious" (issue 19, item 10).

Was: a 1x1 image, a flat colour or a plain gradient got a "suspicious" 0.54-0.60 from the shipped
models. A faceless picture too small or too plain is now refused with a reason, like a video
with no face; a real photograph, with a face or without, is scored exactly as before.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import fakescope.detect.pipeline as pipeline
from tests.conftest import shared


def ramp(height: int, width: int) -> np.ndarray:
    """A horizontal grey ramp, black to white."""
    row = np.linspace(0, 255, width).astype(np.uint8)
    return np.repeat(np.repeat(row[None, :, None], height, axis=0), 3, axis=2)


def radial(height: int, width: int) -> np.ndarray:
    """A colour gradient around the centre."""
    y, x = np.mgrid[0:height, 0:width]
    r = np.hypot(y - height / 2, x - width / 2) / np.hypot(height / 2, width / 2)
    return (np.stack([255 * (1 - r), 200 * r, np.full_like(r, 90)], axis=-1)).astype(np.uint8)


BLANKS = {
    "1x1.png": (np.full((1, 1, 3), 128, np.uint8), "too small to judge (1x1 px"),
    "4x4.png": (np.random.default_rng(0).integers(0, 256, (4, 4, 3), dtype=np.uint8), "too small to judge (4x4 px"),
    "flat.png": (np.full((480, 640, 3), (200, 120, 40), np.uint8), "nearly uniform"),
    "flat.jpg": (np.full((480, 640, 3), (20, 20, 20), np.uint8), "nearly uniform"),
    "ramp.png": (ramp(480, 640), "no edges or texture"),
    "ramp.jpg": (ramp(480, 640), "no edges or texture"),
    "radial.png": (radial(600, 800), "no edges or texture"),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", sorted(BLANKS))
def test_a_picture_with_nothing_to_judge_is_not_applicable(pretrained_detector, tmp_path: Path, name: str) -> None:
    pixels, why = BLANKS[name]
    path = tmp_path / name
    Image.fromarray(pixels).save(path, quality=90)
    r = pretrained_detector.detect(path)
    assert r.status == "not_applicable" and r.score is None and r.verdict is None and r.label is None
    assert r.reason.startswith("no face detected and the picture ") and why in r.reason
    assert r.modalities[0].skipped == r.reason and not r.faces and not r.detectors


def faceless_photo(tmp_path: Path) -> Path:
    """The lower part of a real photograph (clothes and background, no face), as PNG."""
    photo = Image.open(shared("ai_flux", "real", "gonzalez_real_000.jpg")).convert("RGB")
    path = tmp_path / "no-face.png"
    photo.crop((0, photo.height * 3 // 4, photo.width, photo.height)).save(path)
    return path


@pytest.mark.timeout(120)
@pytest.mark.parametrize("which", ["with a face", "without a face"])
def test_a_real_photo_is_scored_as_before(pretrained_detector, tmp_path: Path, monkeypatch, which: str) -> None:
    path = shared("ffpp_faces", "real", sorted(p.name for p in shared("ffpp_faces", "real").iterdir())[0])
    if which == "without a face":
        path = faceless_photo(tmp_path)
    monkeypatch.setattr(pretrained_detector, "cache", None)  # both runs analyse the file
    r = pretrained_detector.detect(path)
    assert r.status == "ok" and r.score is not None, r.reason
    assert ("no face detected" in (r.reason or "")) == (which == "without a face")
    monkeypatch.setattr(pipeline, "too_little_content", lambda image: None)  # the pipeline before the check
    before = pretrained_detector.detect(path)
    assert (r.score, r.reason, r.detectors) == (before.score, before.reason, before.detectors)
