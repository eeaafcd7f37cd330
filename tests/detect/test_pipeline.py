"""Pipelines with a random-weight model: faces, tracks, fallbacks and statuses (not accuracy)."""

from __future__ import annotations

import wave

import av
import numpy as np
import pytest
from PIL import Image

from tests.conftest import shared


def face_crop(i: int) -> np.ndarray:
    folder = shared("dfdc_faces", "real")
    name = sorted(p.name for p in folder.iterdir())[i]
    return np.asarray(Image.open(folder / name).convert("RGB"))


def two_people() -> np.ndarray:
    """Two real face crops side by side on a padded canvas (480 x 960)."""
    a, b = (np.pad(face_crop(i), ((128, 128), (128, 128), (0, 0)), mode="edge") for i in (0, 5))
    return np.concatenate([a, b], axis=1)


def faceless_picture(height: int = 300, width: int = 400) -> np.ndarray:
    """Squares of random colours: edges and colour everywhere, no face (a flat picture is refused)."""
    tiles = np.random.default_rng(0).integers(0, 256, (height // 25 + 1, width // 25 + 1, 3), dtype=np.uint8)
    return np.ascontiguousarray(tiles.repeat(25, axis=0).repeat(25, axis=1)[:height, :width])


def write_video(path, frames: list[np.ndarray], fps: int = 10) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for arr in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def test_image_with_two_faces_scores_each(random_detector, tmp_path):
    path = tmp_path / "two.png"
    Image.fromarray(two_people()).save(path)
    r = random_detector.detect(path)
    assert r.status == "ok" and r.media_type == "image"
    assert len(r.faces) == 2
    assert r.score == pytest.approx(max(f.score for f in r.faces), abs=1e-6)
    left, right = sorted(r.faces, key=lambda f: f.frames[0][2][0])
    assert left.frames[0][2][0] < 480 <= right.frames[0][2][0]


def test_image_without_a_face_is_scored_whole(random_detector, tmp_path):
    path = tmp_path / "tiles.jpg"
    Image.fromarray(faceless_picture()).save(path)
    r = random_detector.detect(path)
    assert r.status == "ok" and r.score is not None
    assert "no face detected" in r.reason
    assert r.faces[0].frames[0][2] == [50.0, 0.0, 300.0, 300.0]


@pytest.mark.parametrize(
    ("shape", "fill", "why"),
    [
        ((1, 1), "flat", "too small to judge (1x1 px"),
        ((4, 4), "tiles", "too small to judge (4x4 px"),
        ((300, 400), "flat", "nearly uniform"),
        ((300, 400), "ramp", "no edges or texture"),
    ],
)
def test_faceless_picture_with_nothing_to_judge_is_not_applicable(random_detector, tmp_path, shape, fill, why):
    height, width = shape
    pictures = {
        "flat": np.full((height, width, 3), 127, np.uint8),
        "tiles": np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8),
        "ramp": np.repeat(np.linspace(0, 255, width, dtype=np.uint8)[None, :, None], height, axis=0).repeat(3, axis=2),
    }
    path = tmp_path / f"{fill}.png"
    Image.fromarray(pictures[fill]).save(path)
    r = random_detector.detect(path)
    assert r.status == "not_applicable" and r.score is None and r.verdict is None and not r.faces
    assert r.reason.startswith("no face detected and the picture") and why in r.reason
    assert [(m.modality, m.score, m.weight, m.skipped) for m in r.modalities] == [("image", None, 0.0, r.reason)]


def test_video_with_two_people_has_two_tracks_and_max_fusion(random_detector, tmp_path):
    base = two_people()
    frames = [np.roll(base, shift=2 * i, axis=1) for i in range(20)]
    path = tmp_path / "two.mp4"
    write_video(path, frames)
    r = random_detector.detect(path)
    assert r.status == "ok" and r.media_type == "video"
    assert len(r.faces) == 2 and {f.track_id for f in r.faces} == {0, 1}
    assert r.score == pytest.approx(max(f.score for f in r.faces), abs=1e-6)
    assert r.frames_sampled == 8 and all(len(f.frames) >= 6 for f in r.faces)
    assert r.duration == pytest.approx(2.0, abs=0.15)
    assert r.segments and r.segments[0].start == 0.0


def test_video_without_faces_is_not_applicable(random_detector, tmp_path):
    path = tmp_path / "grey.mp4"
    write_video(path, [np.full((120, 160, 3), 90 + i, np.uint8) for i in range(15)])
    r = random_detector.detect(path)
    assert r.status == "not_applicable" and r.score is None and r.verdict is None
    assert r.reason == "no face found in 8 sampled frames"


def test_real_clip_runs_end_to_end(random_detector):
    r = random_detector.detect(shared("videos", "004.mp4"))
    assert r.status == "ok" and r.faces and r.timings["model"] > 0
    assert all(0.0 <= t <= r.duration for f in r.faces for t, _, _ in f.frames)


def test_audio_file_without_an_audio_model_is_a_clear_error(random_detector, tmp_path):
    path = tmp_path / "tone.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((np.sin(np.arange(16000) / 10) * 3000).astype("<i2").tobytes())
    r = random_detector.detect(path)
    assert (
        r.status == "error"
        and r.media_type == "audio"
        and r.reason == "tone.wav: audio files need an audio model (none is loaded)"
    )


def corners(xywh: list[float]) -> tuple[float, float, float, float]:
    x, y, w, h = xywh
    return (x, y, x + w, y + h)


class CountingFaceDetector:
    """A real face detector that records how many images each call gets."""

    def __init__(self, inner) -> None:
        self.inner, self.name, self.calls = inner, inner.name, []

    def detect(self, images):
        self.calls.append(len(images))
        return self.inner.detect(images)


def test_video_faces_on_every_kth_frame_fill_all_sampled_frames(tmp_path):
    import torch

    from fakescope.detect import Detector
    from fakescope.faces import YuFaceDetector, box_iou
    from fakescope.models import create_model

    base = np.pad(face_crop(0), ((64, 64), (160, 160), (0, 0)), mode="edge")
    frames = [np.roll(base, shift=3 * i, axis=1) for i in range(30)]  # the face drifts right, 3 s at 10 fps
    path = tmp_path / "drift.mp4"
    write_video(path, frames)
    torch.manual_seed(0)
    model = create_model(pretrained=False)
    runs = {}
    for every in (1, 3):
        faces = CountingFaceDetector(YuFaceDetector())
        r = Detector(model, model_name="random", face_detector=faces, num_frames=8, detect_every=every).detect(path)
        assert r.status == "ok" and len(r.faces) == 1 and len(r.faces[0].frames) == 8
        runs[every] = (faces.calls, r.faces[0].frames)
    assert runs[1][0] == [8]
    assert runs[3][0] == [4]  # frames 0, 3, 6, 7; the faces between are interpolated
    for (t1, _, box1), (t3, _, box3) in zip(runs[1][1], runs[3][1], strict=True):
        assert t1 == t3
        assert box_iou(corners(box1), corners(box3)) > 0.85
    with pytest.raises(ValueError, match="detect_every"):
        Detector(model, model_name="random", detect_every=0)


def test_a_video_calibration_maps_every_track_and_brings_its_bands(tmp_path):
    import torch

    from fakescope.detect import Detector
    from fakescope.detect.fusion import VideoCalibration, track_score
    from fakescope.faces import create_face_detector
    from fakescope.models import create_model

    torch.manual_seed(0)
    detector = Detector(create_model(pretrained=False), model_name="random", face_detector=create_face_detector("mtcnn"))
    detector.num_frames = 8
    bands = {"real_below": 0.01, "fake_at_or_above": 0.02}
    detector.video_calibration = VideoCalibration("random", slope=0.5, bias=-3.0, thresholds=bands)
    path = tmp_path / "two.mp4"
    write_video(path, [np.roll(two_people(), shift=2 * i, axis=1) for i in range(20)])
    r = detector.detect(path)
    for face in r.faces:
        assert face.score == pytest.approx(detector.video_calibration(track_score([s for _, s, _ in face.frames])), abs=1e-6)
    assert r.score == pytest.approx(max(f.score for f in r.faces), abs=1e-6)
    expected = "manipulated" if r.score >= 0.02 else "suspicious" if r.score >= 0.01 else "authentic"
    assert r.verdict == expected
