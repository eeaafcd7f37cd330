"""The learned picture fusion: its formula, the shipped pair's loading, and what the Detector does with it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fakescope.detect import fusion
from fakescope.detect.fusion import PictureFusion, logit


def sigmoid(z: float) -> float:
    return float(1 / (1 + np.exp(-z)))


def test_fuse_is_the_logistic_regression_on_logits_max_and_probabilities() -> None:
    f = PictureFusion("face", "image", coef=(0.5, 1.5, 1.0, 2.0, -1.0), bias=-0.25)
    score, weights = f.fuse(0.2, 0.9)
    zf, zw = logit(0.2), logit(0.9)
    assert score == pytest.approx(sigmoid(0.5 * zf + 1.5 * zw + 1.0 * max(zf, zw) + 2.0 * 0.2 - 1.0 * 0.9 - 0.25))
    assert sum(weights) == pytest.approx(1.0)
    assert weights[1] > weights[0]  # the picture model carried the evidence here


def test_a_discounted_member_cannot_decide_alone() -> None:
    """A fusion that learned the face model is noise on pictures keeps a confident face score from deciding."""
    f = PictureFusion("face", "image", coef=(0.1, 1.0, 0.0, 0.0, 0.0), bias=0.0)
    assert f.fuse(0.99, 0.05)[0] < 0.5
    assert max(0.99, 0.05) > 0.5  # the max rule would have cried wolf


def test_shipped_fusion_is_found_only_for_its_exact_pair(tmp_path, monkeypatch) -> None:
    (tmp_path / fusion.PICTURE_FUSION_FILE).write_text(
        json.dumps(
            {"fits": [{"face_model": "a.x", "image_model": "b.y", "coef": [1, 2, 3, 4, 5], "bias": 0.5, "thresholds": None}]}
        )
    )
    monkeypatch.setattr(fusion.resources, "files", lambda _package: tmp_path)
    found = PictureFusion.shipped("a.x", "b.y")
    assert found is not None and found.coef == (1, 2, 3, 4, 5) and found.bias == 0.5
    assert PictureFusion.shipped("a.x", "other.z") is None


def test_the_default_pair_ships_a_fusion_with_out_of_fold_metrics() -> None:
    from fakescope.constants import DEFAULT_IMAGE_MODEL, DEFAULT_MODEL

    shipped = PictureFusion.shipped(DEFAULT_MODEL, DEFAULT_IMAGE_MODEL)
    assert shipped is not None and shipped.thresholds is not None
    assert 0 < shipped.thresholds["real_below"] <= shipped.thresholds["fake_at_or_above"] < 1
