from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest

from fakescope.faces import Face, YuFaceDetector, box_iou, detect_sparse
from fakescope.faces.sparse import interpolate_face, pair_faces
from fakescope.media import sample_frames
from tests.conftest import shared


def numbered(count: int) -> list[np.ndarray]:
    """Tiny frames whose first pixel holds their number, so a scripted face detector knows which it got."""
    frames = [np.zeros((4, 4, 3), np.uint8) for _ in range(count)]
    for i, frame in enumerate(frames):
        frame[0, 0, 0] = i
    return frames


class Scripted:
    """Faces per frame number from `script`; records which frames it was asked about, call by call."""

    name = "scripted"

    def __init__(self, script: Callable[[int], list[Face]]) -> None:
        self.script = script
        self.calls: list[list[int]] = []

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        numbers = [int(image[0, 0, 0]) for image in images]
        self.calls.append(numbers)
        return [self.script(n) for n in numbers]


def moving(i: int) -> list[Face]:
    """One face drifting right by 4 px a frame, with two landmarks and a score that varies."""
    x = 100.0 + 4 * i
    return [Face(box=(x, 50.0, x + 80, 150.0), score=0.9 + 0.01 * (i % 2), landmarks=((x + 20, 80.0), (x + 60, 80.0)))]


def test_every_second_frame_is_detected_and_the_rest_interpolated() -> None:
    face_detector = Scripted(moving)
    faces = detect_sparse(face_detector, numbered(9), every=2)
    assert face_detector.calls == [[0, 2, 4, 6, 8]]
    assert len(faces) == 9 and all(len(f) == 1 for f in faces)
    for i, (face,) in enumerate(faces):
        (truth,) = moving(i)
        assert face.box == pytest.approx(truth.box)
        assert np.allclose(face.landmarks, truth.landmarks)
    assert faces[3][0].score == pytest.approx(0.9)  # the lower of its neighbours' scores


def test_the_last_frame_is_always_detected() -> None:
    face_detector = Scripted(moving)
    faces = detect_sparse(face_detector, numbered(8), every=3)
    assert face_detector.calls == [[0, 3, 6, 7]]
    assert faces[5][0].box == pytest.approx(moving(5)[0].box)


def test_a_face_that_appears_gets_the_frames_between_detected() -> None:
    face_detector = Scripted(lambda i: moving(i) if i >= 3 else [])
    faces = detect_sparse(face_detector, numbered(9), every=2)
    # 0 and 2 agree (no face): 1 stays empty undetected; 2 and 4 disagree: 3 is detected.
    assert face_detector.calls == [[0, 2, 4, 6, 8], [3]]
    assert [len(f) for f in faces] == [0, 0, 0, 1, 1, 1, 1, 1, 1]
    assert faces[3] == moving(3)


def test_a_jump_is_detected_not_interpolated() -> None:
    def jumping(i: int) -> list[Face]:
        x = 0.0 if i < 4 else 500.0
        return [Face(box=(x, 0.0, x + 50, 50.0), score=0.9)]

    face_detector = Scripted(jumping)
    faces = detect_sparse(face_detector, numbered(9), every=4)
    assert face_detector.calls == [[0, 4, 8], [1, 2, 3]]
    assert [f[0].box[0] for f in faces] == [0.0] * 4 + [500.0] * 5


def test_two_faces_pair_up_whatever_their_order() -> None:
    def two(i: int) -> list[Face]:
        a = Face(box=(10.0 + i, 10.0, 60.0 + i, 60.0), score=0.9)
        b = Face(box=(300.0 - i, 10.0, 400.0 - i, 110.0), score=0.8)
        return [a, b] if i % 4 == 0 else [b, a]

    face_detector = Scripted(two)
    faces = detect_sparse(face_detector, numbered(5), every=4)
    assert face_detector.calls == [[0, 4]]
    for i in (1, 2, 3):
        big, small = faces[i]  # largest first, as face detectors return them
        assert big.box == pytest.approx((300.0 - i, 10.0, 400.0 - i, 110.0))
        assert small.box == pytest.approx((10.0 + i, 10.0, 60.0 + i, 60.0))


def test_every_one_and_short_clips_detect_everything() -> None:
    for every, count in ((1, 5), (3, 2), (4, 1)):
        face_detector = Scripted(moving)
        faces = detect_sparse(face_detector, numbered(count), every=every)
        assert face_detector.calls == [list(range(count))]
        assert faces == [moving(i) for i in range(count)]
    assert detect_sparse(Scripted(moving), [], every=2) == []


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="every"):
        detect_sparse(Scripted(moving), numbered(3), every=0)
    with pytest.raises(ValueError, match="min_iou"):
        detect_sparse(Scripted(moving), numbered(3), every=2, min_iou=0.0)


def test_pair_and_interpolate_helpers() -> None:
    a = Face(box=(0.0, 0.0, 10.0, 10.0), score=0.7, landmarks=((2.0, 2.0),))
    b = Face(box=(2.0, 0.0, 12.0, 10.0), score=0.9, landmarks=None)
    assert pair_faces([a], [b], 0.5) == [(a, b)]
    assert pair_faces([a], [b], 0.9) is None  # IoU 0.67
    assert pair_faces([a], [], 0.5) is None
    assert pair_faces([], [], 0.5) == []
    middle = interpolate_face(a, b, 0.5)
    assert middle.box == (1.0, 0.0, 11.0, 10.0) and middle.score == 0.7 and middle.landmarks is None


def test_real_clip_gets_boxes_on_every_sampled_frame() -> None:
    # 32 frames of a 12-s clip, as the video pipeline samples them, at the detection size.
    frames = [f.image for f in sample_frames(shared("videos", "004.mp4"), 32, max_side=640)]
    full = YuFaceDetector().detect(frames)
    assert all(full)
    for i, frame in enumerate(frames):
        frame[0, 0, 0] = i  # the scripted face detector replays the real detections by frame number
    counting = Scripted(lambda i: full[i])
    sparse = detect_sparse(counting, frames, every=2)
    detected = {i for call in counting.calls for i in call}
    assert len(detected) < 24
    assert all(sparse), "every sampled frame has a face"
    ious = [box_iou(sparse[i][0].box, full[i][0].box) for i in set(range(len(frames))) - detected]
    assert min(ious) > 0.5 and sum(ious) / len(ious) > 0.8
