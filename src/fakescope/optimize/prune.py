"""Magnitude pruning of conv and linear weights, and a short fine-tune that keeps pruned weights at zero.

- `l1`: global L1 unstructured pruning: the smallest `amount` of all conv/linear weights,
  ranked together, are zeroed (layers lose different shares; the file compresses, dense
  kernels do not get faster).
- `channels`: L1-norm structured pruning of each convolution's output channels (`amount` of
  each layer's filters zeroed). The tensors keep their shapes, so speed is unchanged until
  the channels are cut out; what it shows is how much accuracy a slimmer network would keep.

Pruning attaches masks (`weight_orig` x `weight_mask`); `make_permanent` bakes them in so the
model exports and saves like any other. Fine-tuning a pruned model is training
(`train.prune_finetune`).
"""

from __future__ import annotations

import logging

from torch import nn
from torch.nn.utils import prune

from fakescope.errors import FakescopeError
from fakescope.models.onnx_artifact import PRUNE_METHODS

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
