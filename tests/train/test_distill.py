"""Knowledge distillation: the loss on hand-computed numbers, a teacher that never learns, teachers that cannot teach."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from fakescope.errors import FakescopeError
from fakescope.models import create_model
from fakescope.models.base import ClassifierModel
from fakescope.models.config import PretrainedCfg
from fakescope.train.distill import Distiller, distillation_loss, load_teacher, teacher_view
from fakescope.train.loop import OneCycle, train_one_epoch

STUDENT = torch.tensor([0.0, 2.0])
LABELS = torch.tensor([1.0, 0.0])
TEACHER = torch.tensor([0.0, 0.0])
# BCE: (log 2 + (2 + log(1 + e^-2))) / 2
HARD = (math.log(2) + 2 + math.log1p(math.exp(-2))) / 2
# teacher at p = 0.5; student logit 2 at T = 2 is 1: KL = (softplus(-1) + softplus(1)) / 2 - log 2; x T^2; mean over 2
SOFT_T2 = 4 * ((math.log1p(math.exp(-1)) + math.log1p(math.exp(1))) / 2 - math.log(2)) / 2


class TinyModel(ClassifierModel):
    def __init__(self, temperature: float = 1.0) -> None:
        super().__init__(PretrainedCfg(input_size=(3, 8, 8), temperature=temperature))
        self.conv = nn.Conv2d(3, 4, 3)
        self.head = nn.Linear(4, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).mean(dim=(2, 3))

    def classifier(self, feat: torch.Tensor) -> torch.Tensor:
        return self.head(feat)


def test_alpha_zero_is_plain_bce():
    out = distillation_loss(STUDENT, TEACHER, LABELS, alpha=0.0, temperature=2.0)
    assert out["total"].item() == pytest.approx(HARD, rel=1e-6)
    assert out["total"].item() == pytest.approx(1.4100376, rel=1e-6)


def test_alpha_one_is_the_soft_term_only():
    out = distillation_loss(STUDENT, TEACHER, LABELS, alpha=1.0, temperature=2.0)
    assert out["total"].item() == pytest.approx(SOFT_T2, rel=1e-6)
    assert out["total"].item() == pytest.approx(0.2402290, rel=1e-6)
    half = distillation_loss(STUDENT, TEACHER, LABELS, alpha=0.5, temperature=2.0)
    assert half["total"].item() == pytest.approx((HARD + SOFT_T2) / 2, rel=1e-6)


def test_soft_term_is_zero_when_the_student_agrees():
    logits = torch.tensor([-3.0, 0.5, 4.0])
    out = distillation_loss(logits, logits.clone(), torch.tensor([0.0, 1.0, 1.0]), alpha=1.0, temperature=3.0)
    assert out["distill"].item() == pytest.approx(0.0, abs=1e-6)


def test_teacher_gets_no_gradient_and_stays_in_eval_mode():
    torch.manual_seed(0)
    student, teacher = TinyModel(), TinyModel(temperature=2.0)
    teacher.train()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    distiller = Distiller(teacher, alpha=0.7, temperature=2.0)
    images = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        raw = teacher(images)["logits"]
    torch.testing.assert_close(distiller.teacher_logits(images), raw / 2.0)

    data = TensorDataset(images, torch.tensor([0, 1, 0, 1]))
    optimizer = torch.optim.SGD(student.parameters(), lr=0.1)
    train_one_epoch(
        student,
        DataLoader(data, batch_size=4),
        optimizer,
        OneCycle(0.1, 1, warmup=0.0),
        device=torch.device("cpu"),
        amp=False,
        loss_fn=distiller,
    )
    assert not teacher.training
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    assert all(torch.equal(v, before[k]) for k, v in teacher.state_dict().items())
    assert all(p.grad is not None for p in student.parameters())


def test_teachers_that_cannot_teach_are_refused():
    student = create_model("faceswap-effnet-lite0.dfdc", pretrained=False)
    with pytest.raises(FakescopeError, match="not a registered model with weights"):
        load_teacher("no-such-model", student)
    with pytest.raises(FakescopeError, match="reads a different input"):
        load_teacher("aigen-effnet-lite0.ffhq", student)


def test_a_teacher_with_another_normaliser_and_size_sees_the_students_pixels():
    student_cfg = PretrainedCfg(input_size=(3, 8, 8), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    teacher_cfg = PretrainedCfg(input_size=(3, 4, 4), mean=(0.4, 0.4, 0.4), std=(0.2, 0.2, 0.2))
    pixels = torch.full((2, 3, 8, 8), 0.6)
    view = teacher_view((pixels - 0.5) / 0.25, student_cfg, teacher_cfg)
    assert view.shape == (2, 3, 4, 4)
    torch.testing.assert_close(view, torch.full((2, 3, 4, 4), (0.6 - 0.4) / 0.2))
    same = torch.randn(1, 3, 8, 8)
    assert teacher_view(same, student_cfg, student_cfg) is same


def test_the_distiller_feeds_the_teacher_its_own_view():
    seen: list[torch.Tensor] = []

    class Recorder(TinyModel):
        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            seen.append(x)
            return {"logits": torch.zeros(len(x))}

    teacher = Recorder()
    teacher.pretrained_cfg = PretrainedCfg(input_size=(3, 8, 8), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    student_cfg = PretrainedCfg(input_size=(3, 8, 8), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    Distiller(teacher, alpha=0.5, temperature=2.0, student_cfg=student_cfg).teacher_logits(torch.zeros(1, 3, 8, 8))
    torch.testing.assert_close(seen[0], torch.full((1, 3, 8, 8), 0.5))


def test_the_clip_face_model_can_teach_the_efficientnet():
    student = create_model("faceswap-effnet-lite0.dfdc", pretrained=False)
    teacher = load_teacher("faceswap-clip-b16.dfdc_ffpp", student)
    assert teacher.pretrained_cfg.mean != student.pretrained_cfg.mean
