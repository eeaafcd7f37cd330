"""Images scored by two detectors (face swap on faces, AI generation on the whole picture), random weights."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from fakescope.constants import DEFAULT_IMAGE_MODEL
from fakescope.detect import Detector, Thresholds
from fakescope.detect.fusion import NO_FACE_TEMPERATURE, soften
from fakescope.detect.result import DetectorScore, Result
from fakescope.errors import ModelError
from fakescope.faces import create_face_detector
from fakescope.models import DEFAULT_MODEL, ClassifierModel, PretrainedCfg, create_model, get_pretrained_cfg
from tests.detect.test_pipeline import faceless_picture, two_people, write_video

# The rules of two detectors on one picture are tested with the effnet AI-picture model, for which no
# learned fusion ships (so the max rule applies); the default pair's fusion: tests/detect/test_picture_fusion.py.
IMAGE_MODEL = "aigen-effnet-lite0.ffhq"
BANDS = {"real_below": 0.0, "fake_at_or_above": 0.0}  # every score is "manipulated"


@pytest.fixture(scope="module")
def models() -> tuple[ClassifierModel, ClassifierModel]:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    return create_model(DEFAULT_MODEL, pretrained=False), create_model(IMAGE_MODEL, pretrained=False)


@pytest.fixture(scope="module")
def mtcnn():
    return create_face_detector("mtcnn")


@pytest.fixture(scope="module")
def people_png(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "two.png"
    Image.fromarray(two_people()).save(path)
    return path


@pytest.fixture(scope="module")
def grey_jpg(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "grey.jpg"
    Image.fromarray(faceless_picture()).save(path)  # a faceless picture with content (a flat one is refused)
    return path


def constant(model: ClassifierModel, p_fake: float) -> ClassifierModel:
    """A copy whose P(fake) is `p_fake` whatever the input (zero head weights, bias = logit)."""
    out = copy.deepcopy(model)
    with torch.no_grad():
        out.head.weight.zero_()
        out.head.bias.fill_(float(np.log(p_fake / (1 - p_fake))))
    return out


def with_bands(model: ClassifierModel, bands: dict[str, float] | None) -> ClassifierModel:
    out = copy.deepcopy(model)
    out.pretrained_cfg = replace(out.pretrained_cfg, thresholds=bands)
    return out


def two_detectors(face: ClassifierModel, image: ClassifierModel | None, faces, **kwargs) -> Detector:
    return Detector(
        face,
        model_name=DEFAULT_MODEL,
        image_model=image,
        image_model_name=IMAGE_MODEL if image else None,
        face_detector=faces,
        **kwargs,
    )


def test_image_gets_both_detector_scores_and_their_max(models, mtcnn, people_png):
    face, image = models
    r = two_detectors(face, image, mtcnn).detect(people_png)
    assert r.status == "ok" and len(r.faces) == 2
    assert [d.name for d in r.detectors] == [DEFAULT_MODEL, IMAGE_MODEL]
    face_d, image_d = r.detectors
    assert face_d.score == pytest.approx(max(f.score for f in r.faces), abs=1e-6)
    # The image model sees the whole 480x960 picture squeezed to 256x256 with PIL bicubic.
    whole = np.array(Image.open(people_png).convert("RGB").resize((256, 256), Image.Resampling.BICUBIC))
    x = (
        torch.from_numpy(whole).permute(2, 0, 1)[None].float() / 255 - torch.tensor(image.pretrained_cfg.mean).view(1, 3, 1, 1)
    ) / torch.tensor(image.pretrained_cfg.std).view(1, 3, 1, 1)
    with torch.inference_mode():
        expected = float(image(x)["prob"][0])
    assert image_d.score == pytest.approx(expected, abs=1e-5)
    assert r.score == pytest.approx(max(face_d.score, image_d.score), abs=1e-6)
    assert r.probabilities["fake"] == pytest.approx(r.score) and r.label == ("FAKE" if r.score >= 0.5 else "REAL")
    assert sorted(d.weight for d in r.detectors) == [0.0, 1.0]
    assert max(r.detectors, key=lambda d: d.weight).score == pytest.approx(r.score, abs=1e-6)
    assert r.verdict == Thresholds().verdict(r.score)
    assert set(r.model_versions) >= {DEFAULT_MODEL, IMAGE_MODEL, "faces"}


@pytest.mark.parametrize("p_image, decides", [(0.98, IMAGE_MODEL), (0.02, DEFAULT_MODEL)])
def test_the_more_suspicious_detector_decides(models, mtcnn, people_png, p_image, decides):
    face, image = models
    r = two_detectors(face, constant(image, p_image), mtcnn).detect(people_png)
    by_name = {d.name: d for d in r.detectors}
    assert by_name[IMAGE_MODEL].score == pytest.approx(p_image, abs=1e-6)
    assert by_name[decides].weight == 1.0 and sum(d.weight for d in r.detectors) == 1.0
    assert r.score == pytest.approx(by_name[decides].score, abs=1e-6)
    assert r.verdict == Thresholds().verdict(r.score)


def test_without_an_image_model_the_face_model_alone_scores(models, mtcnn, people_png):
    face, _ = models
    r = two_detectors(face, None, mtcnn).detect(people_png)
    assert [(d.name, d.weight) for d in r.detectors] == [(DEFAULT_MODEL, 1.0)]
    assert r.score == pytest.approx(max(f.score for f in r.faces), abs=1e-6) == r.detectors[0].score
    assert IMAGE_MODEL not in r.model_versions


def test_without_a_face_the_face_score_is_softened(models, mtcnn, grey_jpg):
    face, image = models
    r = two_detectors(face, constant(image, 0.3), mtcnn).detect(grey_jpg)
    assert r.status == "ok" and "no face detected" in r.reason and IMAGE_MODEL in r.reason
    face_d, image_d = r.detectors
    assert face_d.score == pytest.approx(soften(r.faces[0].score, NO_FACE_TEMPERATURE), abs=1e-6)
    assert abs(face_d.score - 0.5) < abs(r.faces[0].score - 0.5) or r.faces[0].score == pytest.approx(0.5, abs=1e-6)
    assert r.score == pytest.approx(max(face_d.score, image_d.score), abs=1e-6)
    alone = two_detectors(face, None, mtcnn).detect(grey_jpg)
    assert alone.reason == "no face detected: scored the whole image as a face crop"
    assert alone.score == pytest.approx(alone.faces[0].score, abs=1e-6)


def test_videos_are_scored_by_the_face_model_only(models, mtcnn, tmp_path, people_png):
    face, image = models
    calls = []
    watched = copy.deepcopy(image)
    watched.register_forward_hook(lambda *args: calls.append(1))
    path = tmp_path / "two.mp4"
    write_video(path, [np.roll(two_people(), shift=2 * i, axis=1) for i in range(12)])
    detector = two_detectors(face, watched, mtcnn, num_frames=4)
    r = detector.detect(path)
    assert r.status == "ok" and r.media_type == "video"
    assert [(d.name, d.weight) for d in r.detectors] == [(DEFAULT_MODEL, 1.0)]
    assert r.score == pytest.approx(max(f.score for f in r.faces), abs=1e-6)
    assert calls == []
    assert len(detector.detect(people_png).detectors) == 2 and calls == [1]


def scored_by(*names: str) -> Result:
    return Result(file="x", detectors=[DetectorScore(name=n, score=0.5, weight=1.0) for n in names])


IMAGE_SCORE, VIDEO_SCORE = scored_by(DEFAULT_MODEL, IMAGE_MODEL), scored_by(DEFAULT_MODEL)


def test_card_thresholds_drive_the_verdict(models, mtcnn, grey_jpg):
    face, image = models
    banded = with_bands(face, BANDS)
    assert two_detectors(banded, None, mtcnn).detect(grey_jpg).verdict == "manipulated"
    strict = with_bands(face, {"real_below": 1.0, "fake_at_or_above": 1.0})
    assert two_detectors(strict, None, mtcnn).detect(grey_jpg).verdict == "authentic"
    # A fused image score uses card bands only when both cards carry the same ones.
    both = two_detectors(banded, with_bands(image, BANDS), mtcnn)
    assert both.thresholds_for(IMAGE_SCORE) == Thresholds(0.0, 0.0)
    assert both.detect(grey_jpg).verdict == "manipulated"
    one = two_detectors(banded, image, mtcnn)
    assert one.thresholds_for(IMAGE_SCORE) == Thresholds() and one.thresholds_for(VIDEO_SCORE) == Thresholds(0.0, 0.0)
    r = one.detect(grey_jpg)
    assert r.verdict == Thresholds().verdict(r.score)
    assert two_detectors(banded, image, mtcnn, thresholds=Thresholds(0.1, 0.2)).thresholds_for(VIDEO_SCORE) == Thresholds(
        0.1, 0.2
    )


def test_models_must_fit_their_slot(models, mtcnn):
    face, image = models
    with pytest.raises(ModelError, match="is an image model"):
        Detector(image, model_name=IMAGE_MODEL, face_detector=mtcnn)
    with pytest.raises(ModelError, match="is a face model"):
        Detector(face, model_name=DEFAULT_MODEL, image_model=face, image_model_name=DEFAULT_MODEL, face_detector=mtcnn)
    with pytest.raises(ValueError, match="image_model_name"):
        Detector(face, model_name=DEFAULT_MODEL, image_model=image, face_detector=mtcnn)


def redirect_image_weights(monkeypatch, path) -> None:
    """Point the aigen weight file at `path` (absent or a test file), whatever ships in the package."""
    file = get_pretrained_cfg(DEFAULT_IMAGE_MODEL).file
    real = PretrainedCfg.weights_path
    monkeypatch.setattr(PretrainedCfg, "weights_path", lambda self: path if self.file == file else real(self))


def test_auto_skips_an_image_model_whose_weights_are_not_shipped(monkeypatch, tmp_path):
    redirect_image_weights(monkeypatch, tmp_path / "absent.pt")
    assert Detector.from_pretrained(face_detector="haar").image_model is None
    assert Detector.from_pretrained(face_detector="haar", image_model=None).image_model is None
    with pytest.raises(ModelError, match=rf"{DEFAULT_IMAGE_MODEL}: weights file \S+ not shipped yet; train it with"):
        Detector.from_pretrained(face_detector="haar", image_model=DEFAULT_IMAGE_MODEL, backend="torch")


def test_auto_loads_the_image_model_once_its_weights_ship(monkeypatch, tmp_path):
    image = create_model(DEFAULT_IMAGE_MODEL, pretrained=False)
    weights = tmp_path / "aigen.pt"
    torch.save({k: v.half() for k, v in image.state_dict().items()}, weights)
    redirect_image_weights(monkeypatch, weights)
    detector = Detector.from_pretrained(face_detector="haar", audio_model=None, backend="torch")
    assert detector.image_model_name == DEFAULT_IMAGE_MODEL
    assert detector.image_model is not None and detector.image_model.pretrained_cfg.input_kind == "image"
    assert torch.equal(detector.image_model.head.weight, image.head.weight.half().float())
    assert set(detector.model_versions()) == {"fakescope", DEFAULT_MODEL, DEFAULT_IMAGE_MODEL, "faces"}
    assert Detector.from_pretrained(face_detector="haar", image_model=None).image_model is None
