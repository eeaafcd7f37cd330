import csv
import json
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from fakescope.data import VideoSample, load_samples, read_labels_csv
from fakescope.data.crop_cache import CropSettings, best_track, extract_face_crops
from fakescope.errors import FakescopeError
from fakescope.faces import Detection, Face, HaarFaceDetector, Track, create_face_detector
from fakescope.media import sample_frames
from fakescope.models import DEFAULT_MODEL, get_pretrained_cfg
from tests.conftest import EXAMPLES

REAL = "real_ffpp_866.mp4"
FAKE = "fake_ffpp_deepfakes_866_878.mp4"


class ScriptedFaceDetector:
    """A face detector that returns no faces, or raises, to prove what the cache did."""

    def __init__(self, name: str, *, fail: bool = False) -> None:
        self.name = name
        self.fail = fail
        self.calls = 0

    def detect(self, images):
        self.calls += 1
        if self.fail:
            raise AssertionError("the face detector ran although the crops were cached")
        return [[] for _ in images]


@pytest.fixture(scope="module")
def single_thread():
    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    yield
    cv2.setNumThreads(before)


@pytest.fixture(scope="module")
def dfdc_folder(tmp_path_factory) -> Path:
    """The two sample clips as a DFDC-format folder: the fake is made from the real."""
    root = tmp_path_factory.mktemp("dfdc") / "clips"
    root.mkdir()
    for name in (REAL, FAKE):
        shutil.copyfile(EXAMPLES / name, root / name)
    metadata = {REAL: {"label": "REAL", "original": None}, FAKE: {"label": "FAKE", "original": REAL}}
    (root / "metadata.json").write_text(json.dumps(metadata))
    return root


@pytest.fixture(scope="module")
def extracted(dfdc_folder, tmp_path_factory, single_thread):
    cache = tmp_path_factory.mktemp("cache")
    samples = load_samples(dfdc_folder, crop_cache=cache, frames_per_video=2, face_detector=create_face_detector("haar"))
    return cache, samples


def cache_folder(cache: Path) -> Path:
    (folder,) = [p for p in cache.iterdir() if p.is_dir()]
    return folder


def test_crops_are_cut_once_per_video_with_the_models_geometry(extracted, dfdc_folder):
    cache, samples = extracted
    cfg = get_pretrained_cfg(DEFAULT_MODEL)
    folder = cache_folder(cache)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["settings"] == {
        "frames_per_video": 2,
        "size": cfg.image_size,
        "margin": cfg.face_margin,
        "shift": cfg.face_shift,
        "detector": "haar",
        "version": 1,
    }
    assert folder.name == CropSettings(2, cfg.image_size, cfg.face_margin, cfg.face_shift, "haar").key()
    assert {entry["status"] for entry in manifest["videos"].values()} == {"done"}
    assert {s.label for s in samples} == {0, 1}
    assert 2 <= len(samples) <= 4
    for sample in samples:
        assert sample.path.is_file() and sample.path.parent.parent == folder
        assert sample.path.parent.name in {Path(REAL).stem, Path(FAKE).stem}
        assert sample.path.stem.isdigit()
        with Image.open(sample.path) as im:
            assert (im.format, im.size, im.mode) == ("JPEG", (cfg.image_size, cfg.image_size), "RGB")


def test_a_real_and_its_fake_share_group_and_split(extracted):
    _, samples = extracted
    assert {s.group for s in samples} == {REAL}
    assert len({s.split for s in samples}) == 1
    assert samples[0].split in {"train", "val"}


def test_labels_csv_lists_every_crop_and_reads_back(extracted):
    cache, samples = extracted
    folder = cache_folder(cache)
    with (folder / "labels.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["file", "label", "original", "split", "video"]
    assert {(r["label"], r["video"]) for r in rows} == {("REAL", REAL), ("FAKE", FAKE)}
    assert read_labels_csv(folder) == samples


def test_second_call_reuses_the_cache(extracted, dfdc_folder):
    cache, samples = extracted
    again = load_samples(dfdc_folder, crop_cache=cache, frames_per_video=2, face_detector=ScriptedFaceDetector("haar", fail=True))
    assert again == samples


def test_other_settings_never_reuse_or_mix_caches(extracted, dfdc_folder):
    cache, _ = extracted
    videos = [VideoSample(dfdc_folder / REAL, 0, REAL, "train")]
    with pytest.raises(AssertionError, match="face detector ran"):
        extract_face_crops(
            videos,
            cache,
            frames_per_video=2,
            size=64,
            margin=0.0,
            shift=0.0,
            face_detector=ScriptedFaceDetector("haar", fail=True),
        )
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 2


def test_faceless_and_corrupt_videos_are_skipped_with_the_reason(dfdc_folder, tmp_path, caplog, single_thread):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x17" * 4000)
    videos = [VideoSample(broken, 1, "broken.mp4", "train"), VideoSample(dfdc_folder / REAL, 0, REAL, "val")]
    detector = ScriptedFaceDetector("blind")
    with caplog.at_level(logging.WARNING, logger="fakescope.data.crop_cache"):
        samples = extract_face_crops(
            videos, tmp_path / "cache", frames_per_video=2, size=32, margin=0.0, shift=0.0, face_detector=detector
        )
    assert samples == []
    (folder,) = (tmp_path / "cache").iterdir()
    entries = json.loads((folder / "manifest.json").read_text())["videos"]
    assert entries["broken"]["status"] == entries["real_ffpp_866"]["status"] == "skipped"
    assert "broken.mp4" in entries["broken"]["reason"]
    assert entries["real_ffpp_866"]["reason"] == "no face found in 2 sampled frames"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "broken.mp4" in warnings[0] and "\n" not in warnings[0]
    assert (folder / "labels.csv").read_text().splitlines() == ["file,label,original,split,video"]
    calls = detector.calls
    extract_face_crops(videos, tmp_path / "cache", frames_per_video=2, size=32, margin=0.0, shift=0.0, face_detector=detector)
    assert detector.calls == calls


def test_video_names_must_not_share_a_crop_folder(tmp_path):
    videos = [VideoSample(tmp_path / "a" / "x.mp4", 0, "x.mp4"), VideoSample(tmp_path / "b" / "x.mov", 1, "x.mp4")]
    with pytest.raises(FakescopeError, match="share the crop folder 'x'"):
        extract_face_crops(videos, tmp_path, frames_per_video=2, size=32, margin=0.0, shift=0.0, face_detector=HaarFaceDetector())


def test_best_track_prefers_the_large_persistent_confident_face():
    def track(track_id: int, side: float, score: float, frames: int) -> Track:
        face = Face(box=(0.0, 0.0, side, side), score=score)
        return Track(track_id, [Detection(i, float(i), face) for i in range(frames)])

    small_long, large_short, large_long = track(0, 40, 0.99, 4), track(1, 120, 0.95, 1), track(2, 100, 0.97, 4)
    assert best_track([small_long, large_short, large_long]) is large_long
    assert best_track([track(0, 100, 0.5, 2), track(1, 100, 0.99, 2)]).track_id == 1
    assert best_track([]) is None


def test_crop_is_cut_where_the_detector_found_the_face(tmp_path):
    class Boxed:
        name = "boxed"

        def detect(self, images):
            return [[Face(box=(100.0, 100.0, 200.0, 200.0), score=1.0)] for _ in images]

    videos = [VideoSample(EXAMPLES / REAL, 0, REAL, "train")]
    (sample,) = extract_face_crops(videos, tmp_path, frames_per_video=1, size=50, margin=0.0, shift=0.0, face_detector=Boxed())
    (frame,) = sample_frames(EXAMPLES / REAL, 1)
    expected = cv2.resize(frame.image[100:200, 100:200], (50, 50), interpolation=cv2.INTER_AREA)
    assert sample.path.name == f"{frame.index}.jpg"
    assert np.abs(np.asarray(Image.open(sample.path), dtype=float) - expected).mean() < 4.0
