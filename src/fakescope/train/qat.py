"""Quantization-aware training: fine-tune under the rounding that the int8-static ONNX export applies.

The export (`optimize.quantize.quantize_int8_static`) folds each batch norm into the convolution
before it, rounds the folded weights to int8 per output channel (symmetric, scale = max|w| / 127)
and the tensors entering each convolution to uint8 (asymmetric, min/max range including 0).
Post-training, the weights never saw that rounding; here the forward pass applies it (fake
quantization, straight-through gradients), so training moves the weights to where rounding
costs little.

- `QatConv2d` is a Conv2d holding the very same parameters, so the state dict, checkpoints and
  the shipped weights keep their layout; `strip_fake_quant` puts plain convolutions back.
- Batch norms are frozen (running statistics fixed, affine parameters still trained) because
  the fold needs fixed statistics; the trainer keeps them in eval mode.
- Activation ranges are running min/max (not saved: the export calibrates its own on calib
  crops, as post-training quantization does), so the model exports through the usual path.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fakescope.models.base import ClassifierModel

log = logging.getLogger(__name__)

WEIGHT_QMAX = 127  # int8 symmetric, as ONNX Runtime quantizes weights: [-127, 127]
ACT_QMAX = 255  # uint8 asymmetric activations


def fake_quant_weight(weight: torch.Tensor) -> torch.Tensor:
    """Round each output channel of `weight` to int8 with scale max|w| / 127 (gradients pass straight through)."""
    amax = weight.detach().abs().flatten(1).amax(dim=1).clamp_min(1e-8)
    zero = torch.zeros(weight.shape[0], dtype=torch.int32, device=weight.device)
    return torch.fake_quantize_per_channel_affine(weight, amax / WEIGHT_QMAX, zero, 0, -WEIGHT_QMAX, WEIGHT_QMAX)


class ActivationFakeQuant(nn.Module):
    """uint8 fake quantization with a running min/max range (always including 0, as ONNX Runtime's calibrator)."""

    def __init__(self, momentum: float = 0.1) -> None:
        super().__init__()
        self.momentum = momentum
        self.register_buffer("low", torch.zeros(()), persistent=False)
        self.register_buffer("high", torch.zeros(()), persistent=False)
        self.register_buffer("seen", torch.zeros((), dtype=torch.bool), persistent=False)

    @torch.no_grad()
    def observe(self, x: torch.Tensor) -> None:
        low, high = x.detach().min().clamp(max=0.0), x.detach().max().clamp(min=0.0)
        if not self.seen:
            self.low.copy_(low)
            self.high.copy_(high)
            self.seen.fill_(True)
        else:
            self.low.lerp_(low, self.momentum)
            self.high.lerp_(high, self.momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or not self.seen:
            self.observe(x)
        scale = ((self.high - self.low) / ACT_QMAX).clamp_min(1e-8)
        zero_point = torch.round(-self.low / scale).clamp(0, ACT_QMAX).to(torch.int32)
        return torch.fake_quantize_per_tensor_affine(x, scale.float(), zero_point, 0, ACT_QMAX)


def same_shape(conv: nn.Conv2d) -> dict[str, Any]:
    """Constructor arguments for a convolution shaped like `conv`, its parameters on the meta device
    (they are replaced by `conv`'s own, so no memory is allocated for them)."""
    return {
        "in_channels": conv.in_channels,
        "out_channels": conv.out_channels,
        "kernel_size": conv.kernel_size,
        "stride": conv.stride,
        "padding": conv.padding,
        "dilation": conv.dilation,
        "groups": conv.groups,
        "bias": conv.bias is not None,
        "padding_mode": conv.padding_mode,
        "device": "meta",
    }


class QatConv2d(nn.Conv2d):
    """A convolution that sees int8 folded weights and uint8 inputs; its batch norm (if any) runs after it unchanged.

    With frozen statistics the norm computes (y - mean) * s + beta with s = gamma / sqrt(var + eps).
    The export folds s into the weights, so the rounding applies to w * s: this layer rounds w * s
    and divides s back out, and the norm that follows restores it exactly.
    """

    def __init__(self, conv: nn.Conv2d, norm: nn.BatchNorm2d | None, *, momentum: float = 0.1) -> None:
        super().__init__(**same_shape(conv))
        self.weight, self.bias = conv.weight, conv.bias
        self.input_quant = ActivationFakeQuant(momentum)
        self._norm = (norm,)  # a tuple, so the norm stays registered only where it already is

    def fold_scale(self) -> torch.Tensor | None:
        norm = self._norm[0]
        if norm is None:
            return None
        scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
        # A channel with gamma ~ 0 would divide by ~0 below; its output is ~0 after the norm anyway.
        return torch.where(scale.abs() < 1e-6, torch.full_like(scale, 1e-6), scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_quant(x)
        scale = self.fold_scale()
        if scale is None:
            return self._conv_forward(x, fake_quant_weight(self.weight), self.bias)
        y = self._conv_forward(x, fake_quant_weight(self.weight * scale.view(-1, 1, 1, 1)), None)
        y = y / scale.view(1, -1, 1, 1)
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1)

    def to_plain(self) -> nn.Conv2d:
        conv = nn.Conv2d(**same_shape(self))
        conv.weight, conv.bias = self.weight, self.bias
        return conv


def prepare_qat(model: nn.Module, *, momentum: float = 0.1) -> list[nn.Module]:
    """Swap every Conv2d of `model` for a `QatConv2d` in place; returns the batch norms to keep frozen.

    Conv-bn pairs are found as the export's folding finds them (`optimize.fuse.conv_bn_pairs`), so
    the simulation folds exactly the pairs that the exported graph folds.
    """
    from fakescope.optimize.fuse import conv_bn_pairs  # optimize pulls in onnx: only when QAT is on

    pairs = dict(conv_bn_pairs(model))
    norms = []
    convs = [(name, m) for name, m in model.named_modules() if type(m) is nn.Conv2d]
    for name, conv in convs:
        norm = model.get_submodule(pairs[name]) if name in pairs else None
        model.set_submodule(name, QatConv2d(conv, norm, momentum=momentum))
        if norm is not None:
            norms.append(norm)
    log.info("QAT: %d convolutions fake-quantized (%d with a folded batch norm)", len(convs), len(norms))
    return norms


def strip_fake_quant(model: nn.Module) -> nn.Module:
    """Plain convolutions back in place (same parameters): the model trains, saves and exports as usual."""
    for name, module in list(model.named_modules()):
        if isinstance(module, QatConv2d):
            model.set_submodule(name, module.to_plain())
    return model


def folded_norms(model: nn.Module) -> list[nn.Module]:
    """The batch norms that QAT folds into a convolution: training keeps them in eval mode."""
    return [m._norm[0] for m in model.modules() if isinstance(m, QatConv2d) and m._norm[0] is not None]


def export_int8(
    model: ClassifierModel, card: dict[str, Any], out_dir: Path, *, data: Path, calib_crops: int, recipe: str | None
) -> dict[str, dict[str, float]]:
    """fp32 and int8-static ONNX exports of the QAT-trained `model` (fake quantization stripped) into `out_dir`,
    each scored on its model's whole val split; returns {variant: metrics}.

    The exports carry the temperature and verdict bands that training fitted for these weights, and
    the artefact metadata of `fakescope export` plus a `training` entry naming the run.
    """
    from fakescope.models.onnx_artifact import read_metadata, write_metadata
    from fakescope.optimize.export import export_variants

    strip_fake_quant(model)
    model.pretrained_cfg = replace(model.pretrained_cfg, temperature=card["temperature"], thresholds=card["thresholds"])
    exports = export_variants(
        card["model"], out_dir, ["fp32", "int8-static"], model=model.eval(), data=data, calib_crops=calib_crops
    )
    results = {}
    for export in exports:
        metadata = read_metadata(export.onnx)
        metadata["recipe"] = recipe or card.get("recipe", "")
        metadata["training"] = {"qat": True, "run": card.get("extra", {}).get("config", {}).get("name")}
        write_metadata(export.onnx, metadata)
        results[export.variant] = next(iter(export.metrics.values()), {})
        log.info("QAT export %s: val auc %.4f", export.onnx.name, results[export.variant].get("auc", float("nan")))
    return results
