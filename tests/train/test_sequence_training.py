"""A temporal recipe end to end on synthetic face tracks (the crop cache faked): sequences and their self-blended
copies, the fit on cached frame features, leave one group out against the frame model, the exported weights and
the video map shipped beside the frame models' (weights/video_calibration.json)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from fakescope.data import Sample, Splits
from fakescope.models import create_model
from fakescope.train import sequence, sequence_eval
from fakescope.train.config import TrainConfig
from fakescope.train.sequence import run_sequence_training

LIGHT = "temporal-mobilenet-v2-lstm.videos"


def crop_cache(root, videos: int = 8, crops: int = 10) -> list[Sample]:
    """Crop-cache-like folders: pairs of a real video and a fake made from it; fakes flicker frame to frame."""
    rng = np.random.default_rng(0)
    out = []
    for v in range(videos):
        label, group = v % 2, f"source{v // 2}.mp4"
        folder = root / f"video{v}"
        folder.mkdir(parents=True)
        face = rng.integers(60, 200, (48, 48, 3))
        for t in range(crops):
            frame = np.clip(face + (35 * (-1) ** t if label else 0), 0, 255).astype(np.uint8)
            Image.fromarray(frame).save(folder / f"{3 * t}.jpg", quality=95)
            out.append(Sample(folder / f"{3 * t}.jpg", label, group, "train", {"dataset": "clips"}))
    return out


@pytest.fixture
def recipe(tmp_path, monkeypatch) -> TrainConfig:
    monkeypatch.chdir(tmp_path)  # feature caches (runs/features) go here
    crops = crop_cache(tmp_path / "cache")
    calib_groups = {"source3.mp4"}
    splits = Splits([s for s in crops if s.group not in calib_groups], [s for s in crops if s.group in calib_groups], [])
    monkeypatch.setattr(sequence, "make_splits", lambda cfg, model_cfg: splits)
    monkeypatch.setattr(sequence_eval, "make_splits", lambda cfg, model_cfg: splits)
    return TrainConfig.model_validate(
        {
            "name": "temporal-test",
            "model": LIGHT,
            "data": {
                "root": str(tmp_path / "cache"),
                "crop_cache": str(tmp_path / "cache"),
                "val_fraction": 0,
                "calib_fraction": 0.34,
            },
            "sequence": {"length": 4, "stride": 2, "sbi_copies": 1, "leave_one_group_out": True},
            "optim": {"lr": 3e-3},
            "schedule": {"epochs": 3},
            "batch_size": 8,
            "threads": 1,
            "tracker": "none",
            "run_dir": str(tmp_path / "run"),
            "out": str(tmp_path / "out"),
        }
    )


def test_a_temporal_recipe_trains_judges_and_ships_its_model_and_video_map(recipe, tmp_path):
    card = run_sequence_training(recipe)
    rows = {k.split(": ", 1)[1] for k in card["metrics"] if "leave one group out" in k}
    assert rows == {
        LIGHT,
        f"{LIGHT} (video map)",
        "faceswap-effnet-lite0.dfdc_ffpp_kd (raw)",
        "faceswap-effnet-lite0.dfdc_ffpp_kd (video map)",
        "stack of both",
    }
    scored = next(v for k, v in card["metrics"].items() if k.endswith(f"leave one group out: {LIGHT}"))
    assert scored["n"] == 8 and "balanced_logloss" in scored and "real_at_or_above_half" in scored
    report = json.loads((tmp_path / "run" / "leave_one_group_out.json").read_text())
    assert report["groups"] == 4 and len(report["videos"]) == 8
    for gain in report["temporal_vs_frame"].values():
        assert gain["ci95"][0] <= gain["mean"] <= gain["ci95"][1]
    assert "ImageNet" in card["extra"]["starting_weights"] and len(card["extra"]["calib_logloss_by_epoch"]) == 3
    # self-blended copies were written next to the crop cache, once per real sequence
    assert list((tmp_path / "cache" / "sbi_sequences").rglob("*.jpg"))
    # the exported weights load into a fresh model and the video map is shipped for it
    state = torch.load(tmp_path / "out" / "temporal_mobilenet_v2_lstm.videos.pt", weights_only=True)
    create_model(LIGHT, pretrained=False).load_state_dict({k: v.float() for k, v in state.items()})
    fits = json.loads((tmp_path / "out" / "video_calibration.json").read_text())["fits"]
    (entry,) = [f for f in fits if f["face_model"] == LIGHT]
    assert entry["slope"] == report["video_map"]["slope"] and entry["weights_sha256"] == card["sha256"]
    assert set(entry["thresholds"]) >= {"real_below", "fake_at_or_above"}


def test_the_group_bootstrap_is_sure_only_of_a_clear_gain():
    rng = np.random.default_rng(1)
    y = np.tile([0, 1], 20)
    groups = np.repeat(np.arange(20), 2)
    sharp = np.where(y == 1, 0.9, 0.1)
    coin = rng.uniform(0.3, 0.7, len(y))
    clear = sequence_eval.group_bootstrap(y, groups, sharp, coin, seed=0)
    assert clear["logloss_gain"]["ci95"][0] > 0 and clear["auc_gain"]["ci95"][0] > 0
    same = sequence_eval.group_bootstrap(y, groups, coin, coin, seed=0)
    assert same["logloss_gain"] == {"mean": 0.0, "ci95": [0.0, 0.0]}


def test_splits_without_val_only_when_asked(tmp_path):
    """A recipe whose figures come from elsewhere (leave one group out) asks for no val split; an empty val split
    that was not asked for stays an error."""
    from fakescope.errors import FakescopeError
    from fakescope.models import get_pretrained_cfg
    from fakescope.train.loaders import make_splits
    from tests.train.test_probe import make_folder

    root = make_folder(tmp_path / "faces", 20, 20, "GAN")

    def cfg(val_fraction: float) -> TrainConfig:
        data = {"root": str(root), "val_fraction": val_fraction, "calib_fraction": 0.3}
        return TrainConfig.model_validate({"name": "s", "model": LIGHT, "data": data, "tracker": "none"})

    splits = make_splits(cfg(0), get_pretrained_cfg(LIGHT))
    assert splits.val == [] and len(splits.train) + len(splits.calib) == 40
    with pytest.raises(FakescopeError, match="the val split needs both REAL and FAKE"):
        make_splits(cfg(0.01), get_pretrained_cfg(LIGHT))
