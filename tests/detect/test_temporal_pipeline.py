"""A temporal face model in the Detector: each face track is cut into the model's sequences, every crop is encoded
once, the track score fuses the sequences as the pipeline fuses frames, each frame carries its attention, and a
still picture is not_applicable with the reason (random weights: mechanics, not accuracy)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fakescope.detect import Detector
from fakescope.detect.fusion import track_score
from fakescope.faces import create_face_detector
from fakescope.models import create_model
from fakescope.models.temporal import window_starts
from tests.detect.test_pipeline import two_people, write_video

LIGHT = "temporal-mobilenet-v2-lstm.videos"


@pytest.fixture(scope="module")
def detector() -> Detector:
    torch.manual_seed(0)
    model = create_model(LIGHT, pretrained=False)
    with torch.no_grad():
        model.head.bias.fill_(0.3)
    return Detector(model, model_name=LIGHT, face_detector=create_face_detector("mtcnn"), num_frames=12, cache=None)


def test_a_video_is_scored_per_track_sequence_with_attention_per_frame(detector, tmp_path, monkeypatch):
    base = two_people()
    path = tmp_path / "two.mp4"
    write_video(path, [np.roll(base, shift=2 * i, axis=1) for i in range(30)])
    seen: list[tuple[int, np.ndarray]] = []
    score_track = detector.model.score_track

    def recorded(frames: torch.Tensor):
        starts, probs, attention = score_track(frames)
        seen.append((len(frames), probs.numpy().copy()))
        return starts, probs, attention

    monkeypatch.setattr(detector.model, "score_track", recorded)
    r = detector.detect(path)
    assert r.status == "ok" and len(r.faces) == 2 and len(seen) == 2, "one call per track, each crop encoded once"
    for face, (n, probs) in zip(r.faces, seen, strict=True):
        assert len(face.frames) == n and len(probs) == len(window_starts(n, 8, 4)) >= 2
        assert face.score == pytest.approx(track_score(probs), abs=1e-6), "the sequences fused as frames are"
        assert face.attention is not None and len(face.attention) == n
        assert np.mean(face.attention) == pytest.approx(1.0, abs=0.25), "relative to an even share"
        # a frame's score is the mean of the sequences that hold it
        assert min(probs) - 1e-6 <= min(s for _, s, _ in face.frames) <= max(s for _, s, _ in face.frames) <= max(probs) + 1e-6
    assert r.score == pytest.approx(max(f.score for f in r.faces), abs=1e-6)


def test_a_picture_is_not_applicable_for_a_temporal_model(detector, tmp_path):
    from PIL import Image

    path = tmp_path / "two.jpg"
    Image.fromarray(two_people()).save(path)
    r = detector.detect(path)
    assert r.status == "not_applicable" and r.score is None
    assert "judges faces over time" in (r.reason or "")


def test_a_3d_network_scores_each_sequence_whole_with_an_even_share_of_attention(tmp_path):
    torch.manual_seed(0)
    model = create_model("temporal-r3d-18.videos", pretrained=False)
    detector = Detector(model, model_name="r3d", face_detector=create_face_detector("mtcnn"), num_frames=10, cache=None)
    base = two_people()
    path = tmp_path / "two.mp4"
    write_video(path, [np.roll(base, shift=2 * i, axis=1) for i in range(20)])
    r = detector.detect(path)
    assert r.status == "ok" and r.faces
    for face in r.faces:
        assert face.attention is not None and face.attention == pytest.approx([1.0] * len(face.frames), abs=1e-3)
