"""Knowledge distillation: the shipped student learns from a larger teacher's soft targets as well as the labels.

loss = (1 - alpha) * BCE(student, labels) + alpha * T^2 * KL(teacher_T || student_T)

where x_T = sigmoid(logit / T). One logit per crop makes the soft target a Bernoulli, so the KL
is BCE(student / T, p_teacher) minus the teacher's own entropy: zero when the student agrees,
and the same gradient as soft-target cross-entropy. T^2 keeps the soft gradients on the scale of
the hard ones as T changes (Hinton et al., 2015). The teacher's logit is taken after its own
calibration temperature (from its card), so a teacher whose raw logits are over-confident does
not pass that on; it runs in eval mode under no_grad, on the same augmented batch as the student.

Teacher and student must cut the same face (input kind, margin, shift); a teacher with another
normaliser or input size (the CLIP face model teaching the EfficientNet) gets the student's batch
un-normalised, resized and normalised its own way, so it still sees exactly the student's pixels.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torch.nn.functional as F

from fakescope.errors import FakescopeError
from fakescope.models import create_model, list_models
from fakescope.models.base import ClassifierModel
from fakescope.models.config import PretrainedCfg
from fakescope.train.loop import autocast

log = logging.getLogger(__name__)

INPUT_CONTRACT = ("input_kind", "face_margin", "face_shift")


def teacher_view(images: torch.Tensor, student: PretrainedCfg, teacher: PretrainedCfg) -> torch.Tensor:
    """The student's normalised batch as the teacher reads it: same pixels, the teacher's size and normaliser."""
    if (student.mean, student.std, student.image_size) == (teacher.mean, teacher.std, teacher.image_size):
        return images

    def stats(values: tuple[float, ...]) -> torch.Tensor:
        return torch.tensor(values, dtype=images.dtype, device=images.device).view(1, -1, 1, 1)

    pixels = images * stats(student.std) + stats(student.mean)
    if student.image_size != teacher.image_size:
        size = (teacher.image_size, teacher.image_size)
        pixels = F.interpolate(pixels, size=size, mode="bilinear", antialias=True, align_corners=False)
    return (pixels - stats(teacher.mean)) / stats(teacher.std)


def distillation_loss(
    student: torch.Tensor,
    teacher: torch.Tensor,
    labels: torch.Tensor,
    *,
    alpha: float,
    temperature: float,
    label_smoothing: float = 0.0,
) -> dict[str, torch.Tensor]:
    """{"bce", "distill", "total"} for student and teacher logits (B,) and labels (B,) in [0, 1]."""
    student = student.float()
    target = labels.float() * (1 - label_smoothing) + 0.5 * label_smoothing
    bce = F.binary_cross_entropy_with_logits(student, target)
    soft = torch.sigmoid(teacher.float() / temperature)
    kl = F.binary_cross_entropy_with_logits(student / temperature, soft) - F.binary_cross_entropy_with_logits(
        teacher.float() / temperature, soft
    )
    distill = temperature**2 * kl
    return {"bce": bce, "distill": distill, "total": (1 - alpha) * bce + alpha * distill}


class Distiller:
    """The training loss with a teacher: call it with the student's output, the batch and its labels."""

    def __init__(
        self,
        teacher: ClassifierModel,
        *,
        alpha: float,
        temperature: float,
        amp: bool = False,
        label_smoothing: float = 0.0,
        student_cfg: PretrainedCfg | None = None,
    ) -> None:
        self.teacher = teacher.eval().requires_grad_(False)
        self.student_cfg = student_cfg or teacher.pretrained_cfg
        self.alpha, self.temperature, self.amp, self.label_smoothing = alpha, temperature, amp, label_smoothing

    @torch.no_grad()
    def teacher_logits(self, images: torch.Tensor) -> torch.Tensor:
        """The teacher's calibrated logits (raw logit / its card's temperature)."""
        self.teacher.eval()
        device = images.device
        view = teacher_view(images, self.student_cfg, self.teacher.pretrained_cfg)
        with autocast(device) if self.amp else torch.autocast(device.type, enabled=False):
            logits = self.teacher(view)["logits"].float()
        return logits / self.teacher.pretrained_cfg.temperature

    def __call__(self, out: dict[str, torch.Tensor], images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        return distillation_loss(
            out["logits"],
            self.teacher_logits(images),
            labels,
            alpha=self.alpha,
            temperature=self.temperature,
            label_smoothing=self.label_smoothing,
        )


def load_teacher(
    name: str, student: ClassifierModel, *, weights: Path | None = None, device: torch.device | str = "cpu"
) -> ClassifierModel:
    """The registered `name` with its shipped weights (or the state dict in `weights`), checked to read the student's input."""
    if name not in list_models(pretrained=True):
        raise FakescopeError(f"distill.teacher: {name!r} is not a registered model with weights (see `fakescope models`)")
    teacher = create_model(name, pretrained=weights is None)
    if weights is not None:
        if not weights.is_file():
            raise FakescopeError(f"distill.teacher_weights: {weights} not found")
        state = torch.load(weights, map_location="cpu", weights_only=False)
        state = state.get("model", state) if isinstance(state, dict) else state
        try:
            teacher.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
        except RuntimeError as err:
            raise FakescopeError(f"distill.teacher_weights: {weights} does not fit {name} ({str(err).splitlines()[0]})") from None
    for key in INPUT_CONTRACT:
        if getattr(teacher.pretrained_cfg, key) != getattr(student.pretrained_cfg, key):
            raise FakescopeError(
                f"distill.teacher: {name} reads a different input ({key} differs from the student's); "
                f"teacher and student must score the same crops"
            )
    log.info("distilling from %s (%d parameters)", name, sum(p.numel() for p in teacher.parameters()))
    return teacher.to(device, memory_format=torch.channels_last).eval().requires_grad_(False)
