"""Magnitude pruning of conv and linear weights, and a short fine-tune that keeps pruned weights at zero.

- `l1`: global L1 unstructured pruning: the smallest `amount` of all conv/linear weights,
  ranked together, are zeroed (layers lose different shares; the file compresses, dense
  kernels do not get faster).
- `channels`: L1-norm structured pruning of each convolution's output channels (`amount` of
  each layer's filters zeroed). The tensors keep their shapes, so speed is unchanged until
  the channels are cut out; what it shows is how much accuracy a slimmer network would keep.

Pruning attaches masks (`weight_orig` x `weight_mask`); `make_permanent` bakes them in so the
model exports and saves like any other. `fine_tune` trains with the masks on, so pruned weights
stay zero, and re-fits the temperature and verdict bands on the calib loader.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune
from torch.utils.data import DataLoader

from fakescope.errors import FakescopeError
from fakescope.evaluate import binary_metrics, fit_temperature, verdict_thresholds
from fakescope.models.base import DeepfakeDetector
from fakescope.optimize.artifact import PRUNE_METHODS
from fakescope.train.loop import OneCycle, predict_logits, train_one_epoch

log = logging.getLogger(__name__)


def prunable(model: nn.Module, kinds: tuple[type[nn.Module], ...] = (nn.Conv2d, nn.Linear)) -> list[tuple[nn.Module, str]]:
    return [(m, "weight") for m in model.modules() if isinstance(m, kinds)]


def check_amount(amount: float) -> float:
    if not 0.0 <= amount < 1.0:
        raise FakescopeError(f"prune amount must be in [0, 1), got {amount}")
    return float(amount)


def prune_l1_unstructured(model: nn.Module, amount: float) -> nn.Module:
    """Zero the `amount` smallest-magnitude weights over all conv and linear layers together."""
    prune.global_unstructured(prunable(model), pruning_method=prune.L1Unstructured, amount=check_amount(amount))
    return model


def prune_channels(model: nn.Module, amount: float) -> nn.Module:
    """Zero the `amount` lowest-L1 output channels of every convolution (the linear head is left whole)."""
    amount = check_amount(amount)
    for module, name in prunable(model, (nn.Conv2d,)):
        prune.ln_structured(module, name, amount=amount, n=1, dim=0)
    return model


def make_permanent(model: nn.Module) -> nn.Module:
    """Bake the masks into the weights and drop the pruning hooks."""
    for module, name in prunable(model):
        if hasattr(module, f"{name}_mask"):
            prune.remove(module, name)
    return model


def prune_model(model: nn.Module, amount: float, *, method: str = "l1", permanent: bool = True) -> nn.Module:
    """Prune in place with `method` ("l1" or "channels"); `permanent=False` keeps the masks for `fine_tune`."""
    if method not in PRUNE_METHODS:
        raise FakescopeError(f"unknown prune method {method!r} (choose from {', '.join(PRUNE_METHODS)})")
    (prune_l1_unstructured if method == "l1" else prune_channels)(model, amount)
    log.info("pruned (%s, %.0f%%): %.1f%% of conv/linear weights are zero", method, 100 * amount, 100 * sparsity(model))
    return make_permanent(model) if permanent else model


def sparsity(model: nn.Module) -> float:
    """Share of conv and linear weights that are exactly zero (masks applied)."""
    weights = [getattr(m, name).detach() for m, name in prunable(model)]
    total = sum(w.numel() for w in weights)
    return float(sum(int((w == 0).sum()) for w in weights) / max(total, 1))


def fine_tune(
    model: DeepfakeDetector,
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
    platform's: `train.trainer.make_loaders(cfg, model_cfg, make_splits(cfg, model_cfg))`.
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
        loss = train_one_epoch(model, loaders["train"], optimizer, schedule, device=device, amp=amp,
                               description=f"fine-tune {epoch + 1}/{epochs}")
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


def recalibrate(model: DeepfakeDetector, logits: np.ndarray, labels: np.ndarray) -> None:
    """Temperature and verdict bands for the changed weights, fitted on held-out calib logits."""
    cfg = model.pretrained_cfg
    targets = cfg.thresholds or {}
    temperature = fit_temperature(logits, labels)
    thresholds = verdict_thresholds(labels, 1 / (1 + np.exp(-logits / temperature)), fpr=float(targets.get("fpr_target", 0.05)),
                                    fnr=float(targets.get("fnr_target", 0.05)))
    model.pretrained_cfg = replace(cfg, temperature=temperature, thresholds=thresholds)
