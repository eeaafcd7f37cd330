"""A picture that is itself a face crop (one face filling it) is scored whole, as the face models were
trained; a face inside a larger scene is cut out around its box. The face detector is faked (one fixed
box) and the crops the model is given are recorded."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from fakescope.detect import Detector, pipeline
from fakescope.detect.scoring import whole_image_input
from fakescope.faces import Face, crop_face
from fakescope.models import DEFAULT_MODEL, create_model

HEIGHT, WIDTH = 240, 320


class OneBoxDetector:
    """A face detector that finds one face at `box` in every image."""

    name = "one-box"

    def __init__(self, box: tuple[float, float, float, float]) -> None:
        self.box = box

    def detect(self, images):
        return [[Face(box=self.box, score=0.99)] for _ in images]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model(DEFAULT_MODEL, pretrained=False)


@pytest.fixture
def picture(tmp_path):
    """Random pixels (lossless PNG), so any two different crops differ."""
    image = np.random.default_rng(0).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    path = tmp_path / "picture.png"
    Image.fromarray(image).save(path)
    return path, image


@pytest.fixture
def crops_seen(monkeypatch) -> list[np.ndarray]:
    seen: list[np.ndarray] = []
    real = pipeline.score_crops

    def recording(model, crops, **kwargs):
        seen.extend(np.array(c) for c in crops)
        return real(model, crops, **kwargs)

    monkeypatch.setattr(pipeline, "score_crops", recording)
    return seen


def test_a_picture_filled_by_one_face_is_scored_whole(model, picture, crops_seen):
    path, image = picture
    box = (70.0, 15.0, 250.0, 225.0)  # 210 px of the 240 px shorter side
    r = Detector(model, model_name="random", face_detector=OneBoxDetector(box)).detect(path)
    assert r.status == "ok" and len(r.faces) == 1
    assert len(crops_seen) == 1
    np.testing.assert_array_equal(crops_seen[0], whole_image_input(image, model.pretrained_cfg))
    cfg = model.pretrained_cfg
    cut = crop_face(image, box, margin=cfg.face_margin, shift=cfg.face_shift, size=cfg.image_size)
    assert not np.array_equal(crops_seen[0], cut)  # not cut again around the face inside it
    assert r.faces[0].frames[0][2] == [40.0, 0.0, 240.0, 240.0]  # the centre square that was scored
    assert not r.reason or "no face" not in r.reason  # a face was found: no faceless fallback


def test_a_small_face_is_cut_out_around_its_box(model, picture, crops_seen):
    path, image = picture
    box = (140.0, 80.0, 200.0, 150.0)  # 70 px: a face in a scene
    r = Detector(model, model_name="random", face_detector=OneBoxDetector(box)).detect(path)
    assert r.status == "ok" and len(r.faces) == 1
    cfg = model.pretrained_cfg
    expected = crop_face(image, box, margin=cfg.face_margin, shift=cfg.face_shift, size=cfg.image_size)
    assert len(crops_seen) == 1
    np.testing.assert_array_equal(crops_seen[0], expected)
    assert not np.array_equal(crops_seen[0], whole_image_input(image, cfg))
    assert r.faces[0].frames[0][2] == [140.0, 80.0, 60.0, 70.0]
