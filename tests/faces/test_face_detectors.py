from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Sequence

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from fakescope.errors import ModelError
from fakescope.faces import (
    DEFAULT_FACE_DETECTOR,
    Face,
    FallbackFaceDetector,
    HaarFaceDetector,
    MTCNNFaceDetector,
    YuFaceDetector,
    box_iou,
    create_face_detector,
)
from tests.conftest import shared


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """The test machine shares 2 cores with other jobs; torch threads then only contend."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def mtcnn() -> MTCNNFaceDetector:
    return MTCNNFaceDetector(batch_size=2)


def grey(height: int, width: int) -> np.ndarray:
    return np.full((height, width, 3), 128, np.uint8)


def scaled_box(face: Face, factor: float) -> tuple[float, float, float, float]:
    return tuple(v * factor for v in face.box)  # type: ignore[return-value]


def test_mtcnn_finds_the_one_face(mtcnn: MTCNNFaceDetector, face_frame: np.ndarray) -> None:
    (faces,) = mtcnn.detect([face_frame])
    assert len(faces) == 1
    face = faces[0]
    x1, y1, x2, y2 = face.box
    height, width = face_frame.shape[:2]
    assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
    assert 80 <= face.width <= 250 and 100 <= face.height <= 300
    assert 0.4 * width < face.center[0] < 0.85 * width
    assert face.center[1] < 0.5 * height
    assert face.score > 0.95
    assert face.landmarks is not None and len(face.landmarks) == 5
    for px, py in face.landmarks:
        assert x1 <= px <= x2 and y1 <= py <= y2


def test_mtcnn_boxes_are_in_the_given_image_pixels(mtcnn: MTCNNFaceDetector, face_frame: np.ndarray) -> None:
    height, width = face_frame.shape[:2]
    small = cv2.resize(face_frame, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
    large = cv2.resize(face_frame, (width * 3 // 2, height * 3 // 2))
    original, from_small, from_large = mtcnn.detect([face_frame, small, large])
    assert len(original) == len(from_small) == len(from_large) == 1
    assert box_iou(original[0].box, scaled_box(from_small[0], 2.0)) > 0.85
    assert box_iou(original[0].box, scaled_box(from_large[0], 2 / 3)) > 0.85


def test_mtcnn_batches_mixed_sizes_in_input_order(mtcnn: MTCNNFaceDetector, face_frame: np.ndarray) -> None:
    shifted = np.ascontiguousarray(face_frame[:, 400:1100])
    images = [grey(300, 400), face_frame, shifted, grey(720, 1280), face_frame, grey(50, 60)]
    results = mtcnn.detect(images)
    assert [len(faces) for faces in results] == [0, 1, 1, 0, 1, 0]
    reference = results[1][0].box
    assert results[4][0].box == pytest.approx(reference, abs=1e-3)
    x1, y1, x2, y2 = results[2][0].box
    moved_back = (x1 + 400, y1, x2 + 400, y2)
    assert box_iou(reference, moved_back) > 0.85


def test_mtcnn_blank_and_tiny_images_have_no_face(mtcnn: MTCNNFaceDetector) -> None:
    assert mtcnn.detect([grey(360, 640), grey(16, 16)]) == [[], []]
    assert mtcnn.detect([]) == []


def test_min_face_size_is_in_original_pixels(face_frame: np.ndarray) -> None:
    (faces,) = MTCNNFaceDetector(min_face_size=400).detect([face_frame])
    assert faces == []


def test_haar_finds_the_same_face(mtcnn: MTCNNFaceDetector, face_frame: np.ndarray) -> None:
    (haar_faces,) = HaarFaceDetector().detect([face_frame])
    (mtcnn_faces,) = mtcnn.detect([face_frame])
    assert len(haar_faces) == 1
    assert 0.5 < haar_faces[0].score <= 1.0
    assert haar_faces[0].landmarks is None
    assert box_iou(haar_faces[0].box, mtcnn_faces[0].box) > 0.5
    assert HaarFaceDetector().detect([grey(360, 640)]) == [[]]


def test_face_detectors_reject_non_rgb_input(mtcnn: MTCNNFaceDetector) -> None:
    with pytest.raises(ValueError):
        mtcnn.detect([np.zeros((64, 64), np.uint8)])
    with pytest.raises(ValueError):
        HaarFaceDetector().detect([np.zeros((64, 64, 3), np.float32)])


class StubFaceDetector:
    name = "stub"

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        self.calls += 1
        return [[Face(box=(0.0, 0.0, 1.0, 1.0), score=1.0)] for _ in images]


def test_fallback_when_primary_factory_raises_import_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def missing() -> StubFaceDetector:
        raise ImportError("No module named 'facenet_pytorch'")

    fallback = StubFaceDetector()
    face_detector = FallbackFaceDetector(missing, fallback)
    with caplog.at_level(logging.WARNING, logger="fakescope.faces"):
        assert face_detector.name == "stub"
        assert len(face_detector.detect([grey(8, 8), grey(8, 8)])) == 2
        face_detector.detect([grey(8, 8)])
    assert fallback.calls == 2
    assert face_detector.active is fallback
    assert len([r for r in caplog.records if "facenet_pytorch" in r.getMessage()]) == 1


def test_fallback_when_primary_load_fails() -> None:
    class Broken(StubFaceDetector):
        name = "broken"

        def load(self) -> None:
            raise OSError("weights missing")

    face_detector = FallbackFaceDetector(Broken(), StubFaceDetector)
    assert face_detector.name == "stub"


def test_primary_is_used_when_it_builds() -> None:
    primary = StubFaceDetector()
    face_detector = FallbackFaceDetector(primary, HaarFaceDetector())
    face_detector.detect([grey(8, 8)])
    assert primary.calls == 1
    assert face_detector.name == "stub"


def test_errors_while_detecting_are_not_hidden() -> None:
    class Failing(StubFaceDetector):
        def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
            raise RuntimeError("boom")

    face_detector = FallbackFaceDetector(Failing(), StubFaceDetector())
    with pytest.raises(RuntimeError, match="boom"):
        face_detector.detect([grey(8, 8)])


def test_create_face_detector_by_name() -> None:
    assert isinstance(create_face_detector("haar"), HaarFaceDetector)
    default = create_face_detector(max_side=480, min_score=0.95)
    assert isinstance(default, FallbackFaceDetector)
    assert default.name == DEFAULT_FACE_DETECTOR == "yuface"
    assert isinstance(default.active, YuFaceDetector)
    assert default.active.max_side == 480 and default.active.min_score == 0.95
    mtcnn = create_face_detector("mtcnn", max_side=480)
    assert mtcnn.name == "mtcnn" and isinstance(mtcnn, FallbackFaceDetector)
    assert isinstance(mtcnn.active, MTCNNFaceDetector) and mtcnn.active.max_side == 480
    with pytest.raises(ModelError, match="unknown face detector"):
        create_face_detector("retinaface")


def test_yuface_falls_back_to_mtcnn_without_the_wheel(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "yuface", None)  # import yuface now raises ImportError
    face_detector = create_face_detector("yuface", max_side=320, min_score=0.99)
    with caplog.at_level(logging.WARNING, logger="fakescope.faces"):
        assert face_detector.name == "mtcnn"
    mtcnn = face_detector.active
    assert isinstance(mtcnn, FallbackFaceDetector) and isinstance(mtcnn.active, MTCNNFaceDetector)
    assert mtcnn.active.max_side == 320 and mtcnn.active.min_score == 0.9  # scores do not carry over
    assert "yuface" in caplog.text and "'mtcnn'" in caplog.text


@pytest.fixture(scope="module")
def yuface() -> YuFaceDetector:
    return YuFaceDetector()


def dfdc_face(index: int = 0) -> np.ndarray:
    """A 224x224 DFDC face crop padded by 64 px: the face fills most of the picture."""
    folder = shared("dfdc_faces", "real")
    name = sorted(p.name for p in folder.iterdir())[index]
    crop = np.asarray(Image.open(folder / name).convert("RGB"))
    return np.ascontiguousarray(np.pad(crop, ((64, 64), (64, 64), (0, 0)), mode="edge"))


def test_yuface_finds_the_face_of_a_dfdc_crop(yuface: YuFaceDetector) -> None:
    image = dfdc_face()
    (faces,) = yuface.detect([image])
    assert len(faces) == 1
    face = faces[0]
    # The crop (64..288 on both axes) is mostly face: the box covers most of it.
    assert box_iou(face.box, (64.0, 64.0, 288.0, 288.0)) > 0.5
    assert 0.6 <= face.score <= 1.0
    assert face.landmarks is not None and len(face.landmarks) == 5
    (left_eye, right_eye, nose, mouth_left, mouth_right) = face.landmarks
    assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]  # image-left first, as MTCNN
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])


def test_yuface_on_a_video_frame_agrees_with_mtcnn(
    yuface: YuFaceDetector, mtcnn: MTCNNFaceDetector, face_frame: np.ndarray
) -> None:
    (faces,) = yuface.detect([face_frame])
    (reference,) = mtcnn.detect([face_frame])
    assert len(faces) == 1 and len(reference) == 1
    assert box_iou(faces[0].box, reference[0].box) > 0.75
    x1, y1, x2, y2 = faces[0].box
    for px, py in faces[0].landmarks or ():
        assert x1 <= px <= x2 and y1 <= py <= y2


def test_yuface_boxes_are_in_the_given_image_pixels(yuface: YuFaceDetector, face_frame: np.ndarray) -> None:
    height, width = face_frame.shape[:2]
    small = cv2.resize(face_frame, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
    original, from_small = yuface.detect([face_frame, small])
    assert len(original) == len(from_small) == 1
    assert box_iou(original[0].box, scaled_box(from_small[0], 2.0)) > 0.85


def test_yuface_blank_tiny_and_empty_inputs(yuface: YuFaceDetector) -> None:
    assert yuface.detect([grey(360, 640), grey(16, 16), grey(1, 1)]) == [[], [], []]
    assert yuface.detect([]) == []
    with pytest.raises(ValueError):
        yuface.detect([np.zeros((64, 64), np.uint8)])


def test_yuface_thresholds_and_threads(face_frame: np.ndarray) -> None:
    assert YuFaceDetector(min_face_size=400).detect([face_frame]) == [[]]
    assert YuFaceDetector(min_score=0.999).detect([face_frame]) == [[]]
    one = YuFaceDetector(threads=1).detect([face_frame])
    two = YuFaceDetector(threads=2).detect([face_frame])
    default = YuFaceDetector(threads=None).detect([face_frame])
    assert one == two == default
    for bad in ({"max_side": 16}, {"max_side": 2000}, {"threads": 0}):
        with pytest.raises(ValueError):
            YuFaceDetector(**bad)  # type: ignore[arg-type]


def test_yuface_threads_reach_the_openmp_runtime_it_uses_and_torchs_are_given_back(face_frame: np.ndarray) -> None:
    import yuface as package

    from fakescope.faces.detectors.openmp import openmp_runtimes, openmp_threads

    runtimes = openmp_runtimes(package)
    assert len(runtimes) >= 2, "torch is imported: its libgomp and the wheel's are both loaded"
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with openmp_threads(1, runtimes):
            assert [r.omp_get_max_threads() for r in runtimes] == [1] * len(runtimes)
        YuFaceDetector(threads=1).detect([face_frame])
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
