"""YAML recipes: every shipped config validates, overrides reach nested keys, typos are errors."""

from pathlib import Path

import pytest

from fakescope.errors import FakescopeError
from fakescope.models import list_models
from fakescope.train.config import load_config

CONFIGS = sorted(Path("configs").glob("*.yaml"))


def test_configs_exist():
    assert {p.stem for p in CONFIGS} >= {"faceswap-effnet-lite0", "aigen-effnet-lite0", "aigen-effnet-lite0-probe"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_shipped_configs_validate_and_name_registered_models(path):
    cfg = load_config(path)
    assert cfg.model in list_models()
    assert cfg.run_path == Path("runs") / cfg.name


def test_overrides_are_parsed_as_yaml_and_nested():
    cfg = load_config(
        Path("configs/faceswap-effnet-lite0.yaml"),
        ["optim.lr=3e-4", "schedule.epochs=2", "augment.sbi.p=0.5", "out=/tmp/w", "tracker=none"],
    )
    assert cfg.optim.lr == 3e-4 and cfg.schedule.epochs == 2 and cfg.augment.sbi.p == 0.5
    assert cfg.out == Path("/tmp/w") and cfg.tracker == "none"
    assert cfg.augment.pixel()["jpeg"] == {"p": 0.3, "quality": [50, 95]}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.lrr=1", "optim.lrr"),
        ("schedule.epochs=0", "schedule.epochs"),
        ("tracker=wandb", "tracker"),
        ("optim.lr", "key=value"),
        ("optim.lr.x=1", "not a section"),
    ],
)
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(FakescopeError, match=message.replace(".", r"\.")):
        load_config(Path("configs/faceswap-effnet-lite0.yaml"), [override])


def test_bad_files(tmp_path):
    with pytest.raises(FakescopeError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(FakescopeError, match="broken.yaml: not valid YAML"):
        load_config(broken)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(FakescopeError, match="mapping"):
        load_config(listing)
    partial = tmp_path / "partial.yaml"
    partial.write_text("name: x\n")
    with pytest.raises(FakescopeError, match="partial.yaml: model"):
        load_config(partial)
