"""QAT and distillation switched on together in a real (tiny) run through the YAML platform."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from fakescope.models import create_model
from fakescope.train.config import load_config
from fakescope.train.trainer import run_training
from tests.conftest import shared


def test_tiny_qat_distill_run_ends_with_plain_weights_and_a_card(tmp_path):
    cfg = load_config(
        Path("configs/faceswap-effnet-lite0-qat.yaml"),
        [
            f"data.root={shared('dfdc_faces')}",
            "data.limit=16",
            "batch_size=8",
            "eval_batch_size=16",
            "augment.sbi.p=0",
            "qat.export=false",
            "distill={teacher: faceswap-effnet-lite0.dfdc_cutmix, alpha: 0.5, temperature: 2}",
            f"run_dir={tmp_path / 'run'}",
            "tracker=none",
            "threads=1",
            "seed=3",
        ],
    )
    shipped = create_model(cfg.model, pretrained=True).state_dict()
    card = run_training(cfg)
    trained = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert list(trained) == list(shipped), "QAT keeps the checkpoint layout"
    assert not torch.equal(trained["head.weight"], shipped["head.weight"]), "it fine-tunes the shipped weights"
    assert all(torch.equal(trained[k], shipped[k]) for k in shipped if k.endswith(("running_mean", "running_var"))), (
        "folded batch norms keep their statistics"
    )
    written = json.loads((tmp_path / "run" / "card.json").read_text())
    assert written["extra"]["config"]["distill"]["teacher"] == "faceswap-effnet-lite0.dfdc_cutmix"
    assert 0 <= card["metrics"]["dfdc_faces/val"]["auc"] <= 1 and card["temperature"] > 0
