import json
import shutil
from dataclasses import replace

import pytest
import torch

from fakescope.errors import ModelError
from fakescope.models import DEFAULT_MODEL, create_model, get_pretrained_cfg, list_models, registry, sha256_file


def test_default_model_is_registered_and_listed():
    assert DEFAULT_MODEL in list_models()
    assert list_models("faceswap-*") == [n for n in list_models() if n.startswith("faceswap-")]
    assert list_models("nothing-*") == []


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
    # DFDC val: the whole val split, or its DFDC part for a model trained on several folders
    val = next(v for k, v in cfg.metrics.items() if k == "dfdc_faces/val" or k.endswith("/val dfdc_faces"))
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


AIGEN = "aigen-effnet-lite0.ffhq"


def absent_aigen_weights(monkeypatch, tmp_path) -> None:
    """The aigen weight file resolves to a missing path, whether or not it ships in the package."""
    from fakescope.models import PretrainedCfg

    file = registry._pretrained_cfgs["aigen-effnet-lite0"]["ffhq"].file
    real = PretrainedCfg.weights_path
    monkeypatch.setattr(PretrainedCfg, "weights_path", lambda self: tmp_path / "absent.pt" if self.file == file else real(self))


def test_aigen_is_registered_as_a_whole_image_model():
    cfg = get_pretrained_cfg(AIGEN)
    assert AIGEN in list_models() and get_pretrained_cfg("aigen-effnet-lite0") == cfg
    assert cfg.input_kind == "image" and cfg.input_size == (3, 256, 256) and cfg.file == "aigen_effnet_lite0.ffhq.pt"
    assert "configs/aigen-effnet-lite0.yaml" in cfg.recipe and "non-commercial" in cfg.license
    assert get_pretrained_cfg(DEFAULT_MODEL).input_kind == "face"
    model = create_model(AIGEN, pretrained=False)
    assert model(torch.randn(1, 3, 256, 256))["prob"].shape == (1,)
    a, b = (
        create_model(AIGEN, pretrained=False, imagenet_init=True),
        create_model(DEFAULT_MODEL, pretrained=False, imagenet_init=True),
    )
    assert torch.equal(a.backbone.conv_stem.weight, b.backbone.conv_stem.weight)


@pytest.mark.parametrize("name", [AIGEN, "aigen-effnet-lite0"])
def test_unshipped_weights_are_a_clear_model_error(monkeypatch, tmp_path, name):
    absent_aigen_weights(monkeypatch, tmp_path)
    message = (
        r"^aigen-effnet-lite0\.ffhq: weights file aigen_effnet_lite0\.ffhq\.pt not shipped yet; "
        r"train it with `fakescope train configs/aigen-effnet-lite0\.yaml"
    )
    with pytest.raises(ModelError, match=message):
        create_model(name)
    assert create_model(name, pretrained=False).pretrained_cfg.input_kind == "image"


def test_pretrained_listing_has_only_shipped_weights(monkeypatch, tmp_path):
    absent_aigen_weights(monkeypatch, tmp_path)
    assert AIGEN in list_models() and AIGEN not in list_models(pretrained=True)
    assert DEFAULT_MODEL in list_models(pretrained=True)


def test_models_command_lists_an_unshipped_model(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from fakescope.cli import app

    absent_aigen_weights(monkeypatch, tmp_path)
    res = CliRunner().invoke(app, ["models", "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.output)}
    assert rows[AIGEN]["installed"] is False and rows[AIGEN]["size_mb"] is None
    assert rows[AIGEN]["input_size"] == [3, 256, 256] and rows[DEFAULT_MODEL]["installed"] is True
    table = CliRunner().invoke(app, ["models"], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and AIGEN in table.output and "not trained" in table.output


def test_random_init_drops_what_was_fitted_for_the_shipped_weights(monkeypatch):
    arch, tag = registry.split_model_name(DEFAULT_MODEL)
    cfgs = registry._pretrained_cfgs[arch]
    monkeypatch.setitem(cfgs, tag, replace(cfgs[tag], thresholds={"real_below": 0.1, "fake_at_or_above": 0.9}))
    monkeypatch.setattr(type(cfgs[tag]), "with_card", lambda self: self)
    assert get_pretrained_cfg(DEFAULT_MODEL).thresholds is not None
    cfg = create_model(pretrained=False).pretrained_cfg
    assert cfg.thresholds is None and cfg.temperature == 1.0
