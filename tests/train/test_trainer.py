"""Real (tiny) training runs through the YAML platform: learn, export, resume, track, early-stop."""

import json
from pathlib import Path

import pytest
import torch

from fakescope.errors import FakescopeError
from fakescope.models import create_model, sha256_file
from fakescope.train.config import load_config
from fakescope.train.trainer import epochs_without_improvement, load_start, run_training
from tests.conftest import shared

CONFIG = Path("configs/faceswap-effnet-lite0.yaml")


def tiny(tmp_path: Path, *extra: str):
    return load_config(
        CONFIG,
        [
            f"data.root={shared('dfdc_faces')}",
            "data.limit=48",
            "batch_size=16",
            "optim.lr=1e-3",
            f"run_dir={tmp_path / 'run'}",
            "tracker=none",
            "threads=1",
            *extra,
        ],
    )


def test_tiny_run_learns_exports_resumes_and_tracks(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    cfg = tiny(
        tmp_path,
        "schedule.epochs=1",
        f"out={tmp_path / 'weights'}",
        "augment.sbi.p=0.5",
        "augment.cutmix.p=0.5",
        "tracker=mlflow",
        "seed=1",
    )
    card = run_training(cfg)
    weights = tmp_path / "weights" / card["file"]
    assert weights.is_file() and sha256_file(weights) == card["sha256"]
    written = json.loads(weights.with_suffix(".json").read_text())
    assert written["sha256"] == card["sha256"]
    assert set(written["metrics"]["dfdc_faces/val"]) >= {"logloss", "auc", "accuracy", "precision", "recall", "eer", "ece"}
    assert written["thresholds"]["real_below"] <= written["thresholds"]["fake_at_or_above"]
    assert written["temperature"] > 0
    state = torch.load(weights, weights_only=True)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    run = tmp_path / "run"
    assert (run / "curves.png").stat().st_size > 0 and (run / "report" / "report.html").is_file()

    with pytest.raises(FakescopeError, match="--resume"):
        run_training(cfg)
    resumed = run_training(cfg.model_copy(update={"schedule": cfg.schedule.model_copy(update={"epochs": 2})}), resume=True)
    history = json.loads((run / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]
    assert resumed["extra"]["epochs_run"] == 2

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("fakescope").experiment_id])
    assert len(runs) == 1, "the resumed run continues the same tracked run"
    steps = [m.step for m in client.get_metric_history(runs[0].info.run_id, "val/auc")]
    assert sorted(steps) == [1, 2]
    assert runs[0].data.params["augment.sbi.p"] == "0.5"


def test_training_lowers_the_loss(tmp_path):
    """The same 32 crops seen for a few epochs: the mean training loss must fall."""
    cfg = tiny(tmp_path, "data.limit=32", "schedule.epochs=3", "optim.lr=2e-3", "seed=2", "schedule.early_stop_patience=null")
    run_training(cfg)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history[-1]["train_loss"] < history[0]["train_loss"]


def test_early_stopping_counts_epochs_since_the_best_calib_logloss():
    rows = [{"calib": {"logloss": v}} for v in (0.6, 0.5, 0.55, 0.52)]
    assert epochs_without_improvement(rows) == 2
    assert epochs_without_improvement(rows[:2]) == 0


def test_init_from_copies_another_tags_weights_and_refuses_other_networks():
    model = create_model("faceswap-effnet-lite0.dfdc_cutmix", pretrained=False)
    load_start(model, "faceswap-effnet-lite0.dfdc")
    shipped = create_model("faceswap-effnet-lite0.dfdc", pretrained=True).state_dict()
    assert all(torch.equal(v, shipped[k]) for k, v in model.state_dict().items())
    with pytest.raises(FakescopeError, match="another network"):
        load_start(model, "audio-spec-cnn.speech")
    with pytest.raises(FakescopeError, match="not a registered model with weights"):
        load_start(model, "no-such-model")
