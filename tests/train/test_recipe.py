"""A real (tiny) training run: loss goes down, weights + card are written, a rerun resumes."""

import json

import torch

from fakescope.models import sha256_file
from fakescope.train.recipe import TrainConfig, run_training
from tests.conftest import shared


def test_tiny_run_learns_exports_and_resumes(tmp_path):
    cfg = TrainConfig(data=shared("dfdc_faces"), epochs=1, batch_size=16, limit=64, lr=1e-3,
                      run_dir=tmp_path / "run", out=tmp_path / "weights", seed=1)
    card = run_training(cfg)
    weights = tmp_path / "weights" / card["file"]
    assert weights.is_file() and sha256_file(weights) == card["sha256"]
    written = json.loads(weights.with_suffix(".json").read_text())
    assert written["sha256"] == card["sha256"]
    assert set(written["metrics"]["dfdc_faces/val"]) >= {"logloss", "auc", "accuracy", "precision", "recall"}
    state = torch.load(weights, weights_only=True)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())

    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(history) == 1
    resumed = run_training(cfg.model_copy(update={"epochs": 2}))
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]
    assert resumed["extra"]["epochs"] == 2


def test_one_epoch_lowers_the_training_loss(tmp_path):
    """Same 32 crops seen for a few epochs: the mean training loss must fall."""
    cfg = TrainConfig(data=shared("dfdc_faces"), epochs=3, batch_size=16, limit=32, lr=2e-3,
                      run_dir=tmp_path / "run", seed=2)
    run_training(cfg)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history[-1]["train_loss"] < history[0]["train_loss"]
