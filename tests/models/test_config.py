"""PretrainedCfg: the new input contract fields and what `with_card` reads from a training card."""

from __future__ import annotations

import json
import re

import pytest

from fakescope.errors import ModelError
from fakescope.models import PretrainedCfg

CARD = {
    "sha256": "ab" * 32,
    "temperature": 1.5,
    "thresholds": {"real_below": 0.2, "fake_at_or_above": 0.8, "fpr_target": 0.05, "measured_fpr": 0.04},
    "input_size": [3, 256, 256],
    "mean": [0.5, 0.5, 0.5],
    "std": [0.25, 0.25, 0.25],
}


@pytest.fixture
def card_dir(tmp_path, monkeypatch):
    """Weight files resolve into tmp_path, so cards can be written beside them."""
    monkeypatch.setattr(PretrainedCfg, "weights_path", lambda self: tmp_path / self.file if self.file else None)
    return tmp_path


def write_card(folder, card: dict) -> PretrainedCfg:
    (folder / "m.json").write_text(json.dumps(card))
    return PretrainedCfg(file="m.pt", input_kind="image")


def test_defaults_keep_the_face_contract():
    cfg = PretrainedCfg()
    assert cfg.input_kind == "face" and cfg.thresholds is None and cfg.input_size == (3, 224, 224)


def test_with_card_reads_thresholds_and_input_contract(card_dir):
    cfg = write_card(card_dir, CARD).with_card()
    assert cfg.thresholds == CARD["thresholds"]
    assert cfg.input_size == (3, 256, 256) and cfg.image_size == 256
    assert cfg.mean == (0.5, 0.5, 0.5) and cfg.std == (0.25, 0.25, 0.25)
    assert cfg.temperature == 1.5 and cfg.sha256 == CARD["sha256"] and cfg.input_kind == "image"


def test_with_card_keeps_code_defaults_for_absent_keys(card_dir):
    cfg = write_card(card_dir, {"temperature": 2.0}).with_card()
    assert cfg.thresholds is None and cfg.input_size == (3, 224, 224) and cfg.mean == PretrainedCfg().mean
    assert PretrainedCfg(file="none.pt").with_card() == PretrainedCfg(file="none.pt")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"thresholds": {"real_below": 0.2}}, "'thresholds.fake_at_or_above' must be a number"),
        ({"thresholds": {"real_below": 0.9, "fake_at_or_above": 0.1}}, "0 <= real_below <= fake_at_or_above <= 1"),
        ({"thresholds": [0.2, 0.8]}, "'thresholds' must be an object"),
        ({"input_size": [256, 256]}, "'input_size' must be a list of 3 numbers"),
        ({"mean": "imagenet"}, "'mean' must be a list of 3 numbers"),
    ],
)
def test_bad_cards_are_one_line_model_errors(card_dir, change, message):
    with pytest.raises(ModelError, match=rf"^m\.json: .*{re.escape(message)}"):
        write_card(card_dir, {**CARD, **change}).with_card()
