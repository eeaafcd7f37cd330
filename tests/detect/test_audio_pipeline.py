"""Audio files and videos' sound through the Detector (random-weight models: statuses, windows, fusion; not accuracy)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from fakescope.detect import Detector
from fakescope.detect.fusion import ModalityWeights, fuse_modalities
from fakescope.errors import ModelError
from fakescope.faces import create_face_detector
from fakescope.media.audio import encode_audio
from fakescope.models import create_model
from tests.detect.test_pipeline import two_people
from tests.train.test_audio_training import voiced

SR = 16_000


@pytest.fixture(scope="module")
def detector() -> Detector:
    torch.manual_seed(0)
    return Detector(
        create_model(pretrained=False),
        model_name="faces",
        audio_model=create_model("audio-bigru-attn", pretrained=False),
        audio_model_name="voice",
        face_detector=create_face_detector("mtcnn"),
        num_frames=4,
    )


def speech(seconds: float, seed: int = 0) -> np.ndarray:
    return voiced(np.random.default_rng(seed), seconds, buzzy=False)


def write_audio(path: Path, samples: np.ndarray, fmt: str = "wav") -> Path:
    path.write_bytes(encode_audio(samples, SR, fmt))
    return path


def write_talking_video(path: Path, frames: list[np.ndarray], sound: np.ndarray | None, fps: int = 4) -> Path:
    """An h264 clip of `frames` with `sound` (16 kHz) as its AAC track."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        video.height, video.width = frames[0].shape[:2]
        video.pix_fmt = "yuv420p"
        packets = []
        for i, arr in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            packets += video.encode(frame)
        packets += video.encode(None)
        if sound is not None:
            audio = container.add_stream("aac", rate=SR)
            audio.layout = "mono"
            chunk = 1024
            for start in range(0, sound.size, chunk):
                frame = av.AudioFrame.from_ndarray(
                    sound[None, start : start + chunk].astype(np.float32), format="flt", layout="mono"
                )
                frame.sample_rate, frame.pts = SR, start
                packets += audio.encode(frame)
            packets += audio.encode(None)
        for packet in packets:
            container.mux(packet)
    return path


@pytest.mark.parametrize("fmt", ["wav", "mp3", "flac"])
def test_audio_file_gets_windows_and_a_verdict(detector, tmp_path, fmt):
    r = detector.detect(write_audio(tmp_path / f"call.{fmt}", speech(10.0), fmt))
    assert r.status == "ok" and r.media_type == "audio" and r.verdict is not None
    assert r.duration == pytest.approx(10.0, abs=0.1)
    assert [(round(s.start), round(s.end)) for s in r.segments] == [(0, 4), (2, 6), (4, 8), (6, 10)]
    assert all(s.modality == "audio" for s in r.segments)
    scores = sorted((s.score for s in r.segments), reverse=True)
    assert r.score == pytest.approx(np.mean(scores[:2]), abs=1e-5), "mean of the most suspicious half of the windows"
    assert [(m.modality, m.weight, m.skipped) for m in r.modalities] == [("audio", 1.0, None)]
    assert [d.name for d in r.detectors] == ["voice"] and set(r.timings) >= {"audio decode", "audio model"}
    assert r.model_versions["voice"]


@pytest.mark.parametrize(
    ("samples", "reason"),
    [
        (speech(0.8), "audio shorter than 1 s (0.80 s)"),
        (np.zeros(2 * SR, np.float32), "silence only"),
        (np.concatenate([np.zeros(2 * SR, np.float32), speech(0.3)]), "only 0."),
    ],
)
def test_unusable_audio_is_not_applicable_with_a_reason(detector, tmp_path, samples, reason):
    r = detector.detect(write_audio(tmp_path / "x.wav", samples))
    assert r.status == "not_applicable" and reason in r.reason and r.score is None
    assert r.modalities[0].skipped == r.reason


def test_corrupt_audio_is_an_error(detector, tmp_path):
    path = tmp_path / "bad.mp3"
    path.write_bytes(encode_audio(speech(2.0), SR, "mp3")[:300] + bytes(2000))
    r = detector.detect(path)
    assert r.status in ("error", "not_applicable") and r.reason and "Traceback" not in r.reason


def test_video_sound_is_fused_with_the_faces(detector, tmp_path):
    frames = [np.roll(two_people(), 2 * i, axis=1) for i in range(8)]
    r = detector.detect(write_talking_video(tmp_path / "talk.mp4", frames, speech(2.0)))
    assert r.status == "ok" and r.media_type == "video"
    video, audio = r.modalities
    assert (video.modality, audio.modality) == ("video", "audio") and video.skipped is None and audio.skipped is None
    expected, shares = fuse_modalities({"video": video.score, "audio": audio.score}, ModalityWeights())
    assert r.score == pytest.approx(expected, abs=1e-5)
    assert (video.weight, audio.weight) == pytest.approx((shares["video"], shares["audio"]))
    assert {s.modality for s in r.segments} == {"video", "audio"}
    assert [d.name for d in r.detectors] == ["faces", "voice"]


@pytest.mark.parametrize(("sound", "reason"), [(None, "no audio track"), (speech(1.2), "audio shorter than 1.5 s")])
def test_video_sound_skipped_with_a_reason(detector, tmp_path, sound, reason):
    frames = [np.roll(two_people(), 2 * i, axis=1) for i in range(8)]
    r = detector.detect(write_talking_video(tmp_path / "v.mp4", frames, sound))
    assert r.status == "ok"
    audio = r.modalities[1]
    assert audio.modality == "audio" and audio.score is None and audio.weight == 0.0 and reason in audio.skipped
    assert r.modalities[0].weight == 1.0 and r.score == pytest.approx(r.modalities[0].score, abs=1e-6)


def test_faceless_video_is_scored_on_its_sound(detector, tmp_path):
    frames = [np.full((96, 128, 3), 40 + i, np.uint8) for i in range(8)]
    r = detector.detect(write_talking_video(tmp_path / "wall.mp4", frames, speech(3.0)))
    assert r.status == "ok" and "scored on the audio track only" in r.reason
    assert r.modalities[0].skipped.startswith("no face found") and r.modalities[1].weight == 1.0
    assert r.score == pytest.approx(r.modalities[1].score, abs=1e-6)


def test_faceless_silent_video_is_not_applicable(detector, tmp_path):
    frames = [np.full((96, 128, 3), 40, np.uint8) for _ in range(8)]
    r = detector.detect(write_talking_video(tmp_path / "quiet.mp4", frames, np.zeros(2 * SR, np.float32)))
    assert r.status == "not_applicable" and r.reason.startswith("no face found") and r.reason.endswith("audio: silence only")


def test_models_must_fit_the_audio_slot():
    face = create_model(pretrained=False)
    with pytest.raises(ModelError, match="is a face model"):
        Detector(face, model_name="f", audio_model=face, audio_model_name="a")
    with pytest.raises(ModelError, match="is an audio model"):
        Detector(create_model("audio-cnn-gru", pretrained=False), model_name="a")
