"""One trainer for every `ClassifierModel`: train an epoch, predict a loader."""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from fakescope.models.base import ClassifierModel
from fakescope.progress import progress

log = logging.getLogger(__name__)
LOG_EVERY = 50
LossFn = Callable[[dict[str, torch.Tensor], torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]


def autocast(device: torch.device) -> torch.autocast:
    """fp16 on CUDA; bf16 on a CPU that computes it natively (AVX512-BF16 or AMX), off on other CPUs,
    which emulate bf16 far slower than fp32 (docs/RESULTS.md, Training crops and training speed)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type != "cpu" or cpu_has_native_bf16())


@cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU has bf16 instructions (Linux's CPU flags; elsewhere assumed not)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return re.search(r"\b(avx512_bf16|amx_bf16)\b", flags) is not None


def to_device(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Images go channels_last (faster convolutions on CPU); waveforms (B, samples) as they are."""
    if batch.dim() == 4:
        return batch.to(device, memory_format=torch.channels_last, non_blocking=True)
    return batch.to(device, non_blocking=True)


@dataclass
class OneCycle:
    """torch's OneCycleLR curve (cosine up from max_lr/25, cosine down to max_lr/2.5e5) as a
    pure function of the global step.

    Kept as (step, total) rather than a torch scheduler so that a finished run can be
    extended with more epochs: the curve stretches and training resumes on it.
    """

    max_lr: float
    total_steps: int
    step: int = 0
    warmup: float = 0.1
    div: float = 25.0
    final_div: float = 1e4

    def lr(self) -> float:
        t = min(self.step, self.total_steps) / max(self.total_steps, 1)
        start = self.max_lr / self.div
        if t < self.warmup:
            return _cos_anneal(start, self.max_lr, t / self.warmup)
        return _cos_anneal(self.max_lr, start / self.final_div, (t - self.warmup) / (1 - self.warmup))

    def apply(self, optimizer: torch.optim.Optimizer) -> None:
        for group in optimizer.param_groups:
            group["lr"] = self.lr()


def _cos_anneal(start: float, end: float, fraction: float) -> float:
    return end + (start - end) / 2 * (math.cos(math.pi * fraction) + 1)


def train_one_epoch(
    model: ClassifierModel,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    schedule: OneCycle,
    *,
    device: torch.device,
    description: str = "train",
    grad_clip: float = 2.0,
    amp: bool = True,
    label_smoothing: float = 0.0,
    batch_transform: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None,
    frozen: Sequence[nn.Module] = (),
    loss_fn: LossFn | None = None,
) -> float:
    """Returns the mean training loss of the epoch.

    `batch_transform` mixes whole batches (CutMix); `frozen` modules stay in eval mode so a
    linear probe does not drift their batch-norm statistics (and QAT keeps them folded).
    `loss_fn(out, images, labels)` replaces `model.losses` (distillation needs the images).
    """
    model.train()
    for module in frozen:
        module.eval()
    total, count = 0.0, 0
    scaler = torch.amp.GradScaler(enabled=amp and device.type == "cuda")
    params = [p for p in model.parameters() if p.requires_grad]
    with progress() as bar:
        task = bar.add_task(description, total=len(loader), info="")
        for images, labels in loader:
            images = to_device(images, device)
            labels = labels.to(device)
            if batch_transform is not None:
                images, labels = batch_transform(images, labels)
            with autocast(device) if amp else torch.autocast(device.type, enabled=False):
                out = model(images)
            if loss_fn is not None:
                loss = loss_fn(out, images, labels)["total"]
            else:
                loss = model.losses(out, labels, label_smoothing=label_smoothing)["total"]
            schedule.apply(optimizer)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
            scaler.step(optimizer)
            scaler.update()
            schedule.step += 1
            total += loss.item() * len(labels)
            count += len(labels)
            bar.update(task, advance=1, info=f"loss {total / count:.4f}")
            if bar.tasks[task].completed % LOG_EVERY == 0 and not bar.console.is_terminal:
                log.info("%s step %d/%d loss %.4f", description, bar.tasks[task].completed, len(loader), total / count)
    return total / max(count, 1)


@torch.inference_mode()
def predict_logits(
    model: ClassifierModel, loader: Iterable, *, device: torch.device, amp: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Raw logits (before temperature) and labels; `amp=False` computes in fp32 like inference does."""
    model.eval()
    logits, labels = [], []
    for images, y in loader:
        images = to_device(images, device)
        with torch.autocast(device.type, enabled=False) if not amp else autocast(device):
            out = model(images)
        logits.append(out["logits"].float().cpu().numpy())
        labels.append(y.numpy())
    return np.concatenate(logits), np.concatenate(labels)
