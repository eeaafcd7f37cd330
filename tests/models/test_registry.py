import json
import shutil
from dataclasses import replace

import pytest
import torch

from fakescope.errors import ModelError
from fakescope.models import DEFAULT_MODEL, create_model, get_pretrained_cfg, list_models, sha256_file
from fakescope.models import registry


def test_default_model_is_registered_and_listed():
    assert DEFAULT_MODEL in list_models()
    assert list_models("faceswap-*") == [n for n in list_models() if n.startswith("faceswap-")]
    assert list_models("nothing-*") == []


def test_cli_default_matches_the_registry_default():
    from fakescope import cli

    assert cli.DEFAULT_MODEL == DEFAULT_MODEL


def test_unknown_names_are_clear_errors():
    with pytest.raises(ModelError, match="unknown model 'nope'"):
        create_model("nope")
    with pytest.raises(ModelError, match="no pretrained tag 'zzz'"):
        get_pretrained_cfg("faceswap-effnet-lite0.zzz")


def test_random_model_follows_the_detector_contract():
    model = create_model(pretrained=False)
    out = model(torch.randn(2, *model.pretrained_cfg.input_size))
    assert set(out) == {"logits", "prob", "feat"}
    assert out["prob"].shape == (2,) and ((out["prob"] >= 0) & (out["prob"] <= 1)).all()
    loss = model.losses(out, torch.tensor([0, 1]))
    assert loss["total"].ndim == 0


def test_imagenet_init_loads_the_wheel_weights():
    a = create_model(pretrained=False, imagenet_init=True)
    b = create_model(pretrained=False, imagenet_init=True)
    assert torch.equal(a.backbone.conv_stem.weight, b.backbone.conv_stem.weight)
    c = create_model(pretrained=False)
    assert not torch.equal(a.backbone.conv_stem.weight, c.backbone.conv_stem.weight)


def test_shipped_weights_match_their_card_and_floors():
    cfg = get_pretrained_cfg(DEFAULT_MODEL)
    path = cfg.weights_path()
    assert path is not None and path.is_file(), "default weights must ship in the package"
    assert path.stat().st_size <= 20 * 1024 * 1024
    assert sha256_file(path) == cfg.sha256
    val = cfg.metrics["dfdc_faces/val"]
    assert val["n"] == 1200
    assert val["auc"] >= 0.80 and val["logloss"] <= 0.55
    assert 0.05 < cfg.temperature < 20
    create_model(DEFAULT_MODEL)  # loads and verifies


def test_tampered_weights_are_refused(tmp_path, monkeypatch):
    cfg = get_pretrained_cfg(DEFAULT_MODEL)
    bad = tmp_path / "w.pt"
    shutil.copy(cfg.weights_path(), bad)
    with bad.open("ab") as fh:
        fh.write(b"x")
    tampered = replace(cfg, file="w.pt")
    monkeypatch.setattr(type(tampered), "weights_path", lambda self: bad)
    with pytest.raises(ModelError, match="does not match the model card"):
        registry.load_weights(create_model(pretrained=False), tampered)


def test_card_json_is_valid_json():
    path = get_pretrained_cfg(DEFAULT_MODEL).weights_path()
    json.loads(path.with_suffix(".json").read_text())
