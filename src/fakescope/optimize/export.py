"""`fakescope export MODEL --format onnx`: a registered detector as an ONNX model plus its card.

The graph takes `input` (N, 3, H, W) float32, normalised with the card's mean/std, N dynamic,
and returns `prob` = sigmoid(logits / temperature) (calibrated P(fake), as the torch model's
forward) and `logits`. Conv-bn pairs are folded before export (optimize.fuse); pruning, if
asked, comes first, quantization last. Every export is scored on the model's held-out val
split and the metrics go into its metadata, so a faster variant can never hide a loss.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx
import onnxruntime as ort
import torch
from torch import nn

from fakescope.constants import __version__
from fakescope.data.model_data import data_root
from fakescope.errors import ModelError
from fakescope.models import create_model, get_pretrained_cfg
from fakescope.models.base import ClassifierModel
from fakescope.models.config import PretrainedCfg
from fakescope.models.onnx_artifact import (
    INPUT_NAME,
    OUTPUT_NAMES,
    artifact_stem,
    check_variant,
    sha256_bytes,
    write_metadata,
)
from fakescope.models.registry import resolve_name
from fakescope.optimize.evaluation import calibration_inputs, evaluate_variant
from fakescope.optimize.fuse import fuse_conv_bn
from fakescope.optimize.prune import prune_model, sparsity
from fakescope.optimize.quantize import make_variant

log = logging.getLogger(__name__)

OPSET = 18
DEFAULT_CALIBRATION_CROPS = 300
EXPORT_FORMATS = ("onnx",)


class OnnxOutputs(nn.Module):
    """The detector as the ONNX graph sees it: (prob, logits) with the temperature inside; `feat` is left out."""

    def __init__(self, model: ClassifierModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(x)
        return out["prob"], out["logits"]


def check_exportable(name: str, cfg: PretrainedCfg) -> None:
    if cfg.input_kind == "audio":
        raise ModelError(
            f"{name}: audio models cannot be exported to ONNX (their MFCC front end masks each row by its own "
            f"length, a data-dependent shape torch.export cannot trace); use --backend torch"
        )


def export_onnx(model: ClassifierModel, path: Path, *, opset: int = OPSET) -> Path:
    """Write `model` (conv-bn folded, eval mode) as a single-file ONNX graph with a dynamic batch axis."""
    cfg = model.pretrained_cfg
    wrapper = OnnxOutputs(fuse_conv_bn(model)).eval()
    example = torch.zeros(2, *cfg.input_size)
    program = torch.onnx.export(
        wrapper,
        (example,),
        input_names=[INPUT_NAME],
        output_names=list(OUTPUT_NAMES),
        opset_version=opset,
        dynamo=True,
        dynamic_shapes={"x": {0: torch.export.Dim("batch", min=1)}},
        verbose=False,
    )
    program.save(str(path), external_data=False)
    onnx.checker.check_model(str(path))
    return path


@dataclass(frozen=True)
class ExportedModel:
    """What `export_model` wrote: the .onnx, its metadata card, and the val metrics in it."""

    onnx: Path
    metadata: Path
    variant: str
    metrics: dict[str, Any] = field(default_factory=dict)


def build_metadata(
    name: str,
    variant: str,
    onnx_path: Path,
    cfg: PretrainedCfg,
    *,
    source_sha256: str | None,
    pruning: dict[str, Any] | None,
    calibration: dict[str, Any] | None,
) -> dict[str, Any]:
    data = onnx_path.read_bytes()
    recipe = f"fakescope export {name} --format onnx" + (f" --quantize {variant}" if variant != "fp32" else "")
    if pruning:
        recipe += f" --prune {pruning['amount']:g}" + (
            "" if pruning["method"] == "l1" else f" --prune-method {pruning['method']}"
        )
        if pruning["fine_tuned"]:
            recipe = f"python benchmarks/prune_finetune.py --amount {pruning['amount']:g} --method {pruning['method']}"
    return {
        "model": name,
        "variant": variant,
        "format": "onnx",
        "opset": OPSET,
        "input": INPUT_NAME,
        "input_shape": ["batch", *cfg.input_size],
        "input_layout": "NCHW float32, RGB scaled to [0, 1] then (x - mean) / std",
        "outputs": {"prob": "calibrated P(fake) = sigmoid(logits / temperature)", "logits": "raw fake logit"},
        "input_kind": cfg.input_kind,
        "input_size": list(cfg.input_size),
        "image_size": cfg.image_size,
        "mean": list(cfg.mean),
        "std": list(cfg.std),
        "face_margin": cfg.face_margin,
        "face_shift": cfg.face_shift,
        "temperature": cfg.temperature,
        "thresholds": cfg.thresholds,
        "sha256": sha256_bytes(data),
        "size_bytes": len(data),
        "weights": cfg.file,
        "weights_sha256": source_sha256,
        "pruning": pruning,
        "calibration": calibration,
        "metrics": {},
        "recipe": recipe,
        "versions": {
            "fakescope": __version__,
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": ort.__version__,
        },
    }


def export_model(
    name: str,
    out_dir: str | Path,
    fmt: str = "onnx",
    quantize: str | None = None,
    prune: float | None = None,
    **kwargs: Any,
) -> ExportedModel:
    """Export `name` to `<out_dir>/<model>[.pruned-…].<variant>.onnx` + `.json`; returns the paths and val metrics.

    `quantize`: None (fp32), "int8-dynamic", "int8-static" or "fp16"; `prune`: share of
    weights zeroed first. Other keywords as `export_variants`.
    """
    if fmt not in EXPORT_FORMATS:
        raise ModelError(f"unknown export format {fmt!r} (choose from {', '.join(EXPORT_FORMATS)})")
    return export_variants(name, out_dir, [quantize or "fp32"], prune=prune, **kwargs)[0]


def export_variants(
    name: str,
    out_dir: str | Path,
    variants: Sequence[str],
    *,
    prune: float | None = None,
    prune_method: str = "l1",
    calib_crops: int = DEFAULT_CALIBRATION_CROPS,
    data: str | Path | None = None,
    evaluate: bool = True,
    eval_limit: int | None = None,
    model: ClassifierModel | None = None,
    fine_tuned: bool = False,
) -> list[ExportedModel]:
    """Trace `name` once and write each of `variants` ("fp32", "int8-dynamic", "int8-static", "fp16").

    `prune`: share of weights zeroed before export (`prune_method` "l1" or "channels"), with
    no fine-tuning. To fine-tune, prune a model, run `train.prune_finetune.fine_tune` on it and pass
    it as `model` (exported instead of the shipped weights, with its re-fitted temperature)
    with the same `prune` and `fine_tuned=True`: pruning again is a no-op, the zeros being the
    smallest weights, and the export is named and recorded as fine-tuned. int8-static
    calibrates on `calib_crops` crops of the calib split. `data`: the labelled folder (default:
    the card's training data). `evaluate`: score each export on the val split (`eval_limit`
    class-balanced crops, default all of it) and write the metrics into its metadata.
    """
    name = resolve_name(name)
    variants = [check_variant(v) for v in variants]
    check_exportable(name, get_pretrained_cfg(name))
    if calib_crops < 1:
        raise ModelError(f"calib_crops must be at least 1, got {calib_crops}")
    source_sha = None if model is not None else get_pretrained_cfg(name).sha256
    model = model if model is not None else create_model(name, pretrained=True)
    pruning = None
    if prune:
        prune_model(model, prune, method=prune_method)
        pruning = {"method": prune_method, "amount": prune, "sparsity": round(sparsity(model), 4), "fine_tuned": fine_tuned}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    exported = []
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx(model.eval(), Path(tmp) / "fp32.onnx")
        for variant in variants:
            dst = out_dir / f"{artifact_stem(name, variant, prune=prune, prune_method=prune_method, fine_tuned=fine_tuned)}.onnx"
            inputs, calibration = None, None
            if variant == "int8-static":
                inputs = calibration_inputs(name, calib_crops, root=data)
                calibration = {"split": "calib", "crops": len(inputs), "method": "minmax"}
            shutil.move(make_variant(fp32, Path(tmp) / "variant.onnx", variant, calibration=inputs), dst)
            metadata = build_metadata(
                name, variant, dst, model.pretrained_cfg, source_sha256=source_sha, pruning=pruning, calibration=calibration
            )
            meta_path = write_metadata(dst, metadata)
            if evaluate:
                metrics = evaluate_variant(dst, root=data, limit=eval_limit)
                metadata["metrics"] = {f"{data_root(model.pretrained_cfg, data).name}/val": metrics}
                write_metadata(dst, metadata)
                log.info("%s: val auc %.4f logloss %.4f (n=%d)", dst.name, metrics["auc"], metrics["logloss"], metrics["n"])
            exported.append(ExportedModel(dst, meta_path, variant, metadata["metrics"]))
    return exported
