"""Fitting the picture fusion: out-of-fold figures per domain, the shipped JSON, clear config errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from fakescope.errors import FakescopeError
from fakescope.train import picture_fusion
from fakescope.train.picture_fusion import FusionConfig, fit_picture_fusion, load_fusion_config


def folder(root, n: int) -> None:
    root.mkdir()
    rows = ["file,label,split"]
    for i in range(n):
        label = "FAKE" if i % 2 else "REAL"
        Image.new("RGB", (8, 8), (i, 0, 0)).save(root / f"{i}.png")
        rows.append(f"{i}.png,{label},val")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")


def test_fusion_keeps_each_domains_informative_member(tmp_path, monkeypatch) -> None:
    folder(tmp_path / "swaps", 80)
    folder(tmp_path / "generated", 80)
    rng = np.random.default_rng(0)

    def scores(cfg, pictures):
        out = []
        for s in pictures:
            signal = 0.85 if s.label else 0.15
            noise = rng.uniform(0.02, 0.6)
            # the face model knows swaps and fires at random on generated pictures; the picture model the reverse
            out.append((signal, noise) if s.info["dataset"] == "swaps" else (noise, signal))
        return np.clip(np.array(out) + rng.normal(0, 0.08, (len(out), 2)), 0.01, 0.99)

    monkeypatch.setattr(picture_fusion, "detect_scores", scores)
    cfg = FusionConfig(
        face_model="face.x",
        image_model="image.y",
        seed=1,
        sources=[{"root": tmp_path / "swaps"}, {"root": tmp_path / "generated"}],
    )
    entry = fit_picture_fusion(cfg, out=tmp_path)
    metrics = entry["metrics"]
    for domain in ("swaps", "generated"):
        best = max(metrics[domain]["face"]["auc"], metrics[domain]["picture"]["auc"])
        assert metrics[domain]["fused"]["auc"] >= best - 0.05
    assert metrics["all"]["fused"]["auc"] > metrics["all"]["max"]["auc"]
    shipped = json.loads((tmp_path / picture_fusion.PICTURE_FUSION_FILE).read_text())["fits"]
    assert [(f["face_model"], f["image_model"]) for f in shipped] == [("face.x", "image.y")]
    fit_picture_fusion(cfg, out=tmp_path)  # refitting the same pair replaces its entry
    assert len(json.loads((tmp_path / picture_fusion.PICTURE_FUSION_FILE).read_text())["fits"]) == 1


def test_bad_fusion_config_is_one_line(tmp_path) -> None:
    bad = tmp_path / "f.yaml"
    bad.write_text("face_model: a\nimage_model: b\nseed: 1\nsources: []\nbogus: 1\n")
    with pytest.raises(FakescopeError, match="f.yaml"):
        load_fusion_config(bad)
    with pytest.raises(FakescopeError, match="not found"):
        load_fusion_config(tmp_path / "missing.yaml")
