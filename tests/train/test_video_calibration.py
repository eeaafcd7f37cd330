"""Video-level calibration: the map and its bands fitted on clips, judged leave-one-clip-out, used by the Detector."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fakescope.detect import fusion
from fakescope.detect.fusion import VideoCalibration, logit
from fakescope.errors import FakescopeError
from fakescope.train import video_calibration
from fakescope.train.video_calibration import (
    VideoCalibrationConfig,
    fit_video_calibration,
    load_video_calibration_config,
    raw_video_score,
)

MODEL = "faceswap-effnet-lite0.dfdc_cutmix"


def clips_folder(root, labels: list[str]) -> None:
    root.mkdir()
    meta = {}
    for i, label in enumerate(labels):
        (root / f"{i}.mp4").write_bytes(b"not decoded in these tests")
        meta[f"{i}.mp4"] = {"label": label, "dataset": "tagged"} if i % 2 else {"label": label}
    (root / "metadata.json").write_text(json.dumps(meta))


def test_the_map_is_monotone_and_the_video_score_follows_its_tracks():
    calibration = VideoCalibration("m.x", slope=0.5, bias=-1.0)
    assert calibration(0.5) == pytest.approx(1 / (1 + np.exp(1.0)))
    assert calibration(0.9) > calibration(0.6) > calibration(0.2)
    # the raw video score is the pipeline's: top-half mean per track, max over tracks
    assert raw_video_score([[0.1, 0.2, 0.9, 0.7], [0.3]]) == pytest.approx(0.8)


def test_fit_pulls_genuine_clips_below_the_manipulated_band(tmp_path, monkeypatch):
    labels = ["REAL"] * 12 + ["FAKE"] * 16
    clips_folder(tmp_path / "clips", labels)
    rng = np.random.default_rng(0)

    def frames(cfg, clips):
        # a face model whose video scores all sit high: reals around 0.65, fakes around 0.85
        return [[list(np.clip(rng.normal(0.85 if c["label"] else 0.65, 0.08, 8), 0.01, 0.99))] for c in clips]

    monkeypatch.setattr(video_calibration, "clip_frame_scores", frames)
    cfg = VideoCalibrationConfig(kind="video", face_model=MODEL, folders=[tmp_path / "clips"], fpr=0.1)
    entry = fit_video_calibration(cfg, out=tmp_path)
    raw, calibrated = entry["metrics"]["raw"], entry["metrics"]["calibrated_out_of_fold"]
    assert raw["real_recall"] < 0.2, "uncalibrated, the genuine clips sit above 0.5"
    assert calibrated["real_recall"] >= 0.75 and calibrated["real_manipulated"] <= 2
    assert raw["auc"] > 0.8 and "auc" not in calibrated
    shipped = json.loads((tmp_path / fusion.VIDEO_CALIBRATION_FILE).read_text())["fits"]
    assert [f["face_model"] for f in shipped] == [MODEL] and shipped[0]["slope"] > 0

    monkeypatch.setattr(fusion.resources, "files", lambda _package: tmp_path)
    loaded = VideoCalibration.shipped(MODEL)
    assert loaded is not None and loaded.thresholds == shipped[0]["thresholds"]
    assert loaded(0.5) == pytest.approx(1 / (1 + np.exp(-(shipped[0]["slope"] * logit(0.5) + shipped[0]["bias"]))), rel=1e-5)
    assert VideoCalibration.shipped("other.y") is None


def test_one_class_or_too_few_clips_is_a_clear_error(tmp_path, monkeypatch):
    clips_folder(tmp_path / "clips", ["REAL"] * 5)
    monkeypatch.setattr(video_calibration, "clip_frame_scores", lambda cfg, clips: [[[0.4]] for _ in clips])
    cfg = VideoCalibrationConfig(kind="video", face_model=MODEL, folders=[tmp_path / "clips"])
    with pytest.raises(FakescopeError, match="at least 4 clips with a face, of both labels"):
        fit_video_calibration(cfg)


def test_the_shipped_config_validates_and_bad_keys_name_themselves(tmp_path):
    cfg = load_video_calibration_config(Path("configs/fusion/video.yaml"))
    assert cfg.kind == "video" and cfg.frames == 32
    bad = tmp_path / "v.yaml"
    bad.write_text("kind: video\nface_model: m.x\nfolders: []\n")
    with pytest.raises(FakescopeError, match="folders"):
        load_video_calibration_config(bad)
