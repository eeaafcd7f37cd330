"""The QAT, distillation and fine-tuning keys of a training config: good recipes validate, bad values name themselves."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakescope.errors import FakescopeError
from fakescope.train.config import load_config

QAT = Path("configs/faceswap-effnet-lite0-qat.yaml")
DISTILL = Path("configs/faceswap-effnet-lite0-distill.yaml")
CLIP_KD = Path("configs/faceswap-effnet-lite0-clip_kd.yaml")


def test_recipes_turn_the_options_on():
    qat = load_config(QAT)
    assert qat.qat.enabled and not qat.amp and qat.init == "pretrained" and qat.distill is None
    distill = load_config(DISTILL)
    assert distill.distill is not None and distill.distill.teacher == "stack-faceswap.dfdc"
    assert 0 < distill.distill.alpha < 1 and distill.distill.temperature > 0 and not distill.qat.enabled


@pytest.mark.parametrize(
    ("path", "override", "message"),
    [
        (QAT, "amp=true", "qat needs amp: false"),
        (QAT, "qat.calib_crops=0", "qat.calib_crops"),
        (QAT, "qat.observer_momentum=0", "qat.observer_momentum"),
        (QAT, "qat.bits=4", "qat.bits"),
        (QAT, "init=shipped", "init"),
        (DISTILL, "distill.alpha=1.5", "distill.alpha"),
        (DISTILL, "distill.alpha=-0.1", "distill.alpha"),
        (DISTILL, "distill.temperature=0", "distill.temperature"),
        (DISTILL, "distill.teacher=faceswap-effnet-lite0.dfdc", "teacher is the student itself"),
        (DISTILL, "distill.tau=2", "distill.tau"),
        (CLIP_KD, "init=imagenet", "init_from faceswap-effnet-lite0.dfdc replaces init"),
    ],
)
def test_bad_values_are_rejected_with_the_key_named(path, override, message):
    with pytest.raises(FakescopeError, match=message) as err:
        load_config(path, [override])
    assert str(err.value).startswith(str(path))


def test_distilling_without_a_teacher_is_an_error():
    with pytest.raises(FakescopeError, match="distill.teacher"):
        load_config(DISTILL, ["distill={alpha: 0.5}"])


def test_the_clip_teacher_refines_the_shipped_student():
    cfg = load_config(CLIP_KD)
    assert cfg.init_from == "faceswap-effnet-lite0.dfdc" and cfg.init == "auto"
    assert cfg.distill is not None and cfg.distill.teacher == "faceswap-clip-b16.dfdc_ffpp"
