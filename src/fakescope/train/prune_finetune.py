"""A short fine-tune of a pruned model that keeps its pruned weights at zero, then re-calibrates it.

Pruning itself (`optimize.prune`) attaches or bakes in masks; fine-tuning is training, so it
lives here with the loop it runs.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import torch
from torch.nn.utils import prune
from torch.utils.data import DataLoader

from fakescope.errors import FakescopeError
from fakescope.evaluate import binary_metrics, fit_temperature, verdict_thresholds
from fakescope.models.base import ClassifierModel
from fakescope.optimize.prune import make_permanent, prunable
from fakescope.train.loop import OneCycle, predict_logits, train_one_epoch

log = logging.getLogger(__name__)


def fine_tune(
    model: ClassifierModel,
    loaders: dict[str, DataLoader],
    epochs: int,
    *,
    lr: float = 1e-4,
    device: str | torch.device = "cpu",
    amp: bool = False,
) -> list[dict]:
    """Train a pruned model for `epochs` on `loaders["train"]` with its zeros held, then bake the masks in.

    Weights that are zero when fine-tuning starts stay zero (masks are attached if pruning was
    made permanent). With a `loaders["calib"]`, each epoch is scored on it and the temperature
    and verdict bands are re-fitted there, as training does. The loaders are the training
    platform's: `train.loaders.make_loaders(cfg, model_cfg, make_splits(cfg, model_cfg))`.
    Returns one row per epoch (train loss, calib metrics).
    """
    if epochs < 1:
        raise FakescopeError(f"fine-tune epochs must be at least 1, got {epochs}")
    device = torch.device(device)
    for module, name in prunable(model):
        if not hasattr(module, f"{name}_mask"):
            prune.custom_from_mask(module, name, mask=getattr(module, name).detach() != 0)
    model.to(device, memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    schedule = OneCycle(max_lr=lr, total_steps=epochs * len(loaders["train"]))
    history: list[dict] = []
    calib: tuple[np.ndarray, np.ndarray] | None = None
    for epoch in range(epochs):
        loss = train_one_epoch(
            model, loaders["train"], optimizer, schedule, device=device, amp=amp, description=f"fine-tune {epoch + 1}/{epochs}"
        )
        row: dict = {"epoch": epoch + 1, "train_loss": loss}
        if "calib" in loaders:
            calib = predict_logits(model, loaders["calib"], device=device, amp=False)
            row["calib"] = binary_metrics(calib[1], 1 / (1 + np.exp(-calib[0])))
        history.append(row)
        log.info("fine-tune epoch %d/%d: loss %.4f", epoch + 1, epochs, loss)
    make_permanent(model)
    model.eval()
    if calib is not None:
        recalibrate(model, *calib)
    return history


def recalibrate(model: ClassifierModel, logits: np.ndarray, labels: np.ndarray) -> None:
    """Temperature and verdict bands for the changed weights, fitted on held-out calib logits."""
    cfg = model.pretrained_cfg
    targets = cfg.thresholds or {}
    temperature = fit_temperature(logits, labels)
    thresholds = verdict_thresholds(
        labels,
        1 / (1 + np.exp(-logits / temperature)),
        fpr=float(targets.get("fpr_target", 0.05)),
        fnr=float(targets.get("fnr_target", 0.05)),
    )
    model.pretrained_cfg = replace(cfg, temperature=temperature, thresholds=thresholds)
