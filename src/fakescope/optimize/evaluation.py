"""Labelled crops for calibrating and checking exported models, split and preprocessed as the platform does.

The split is rebuilt from the model card (val fraction, calib fraction, seed), as `fakescope
eval` and training do: `val` is the held-out set the card reports on; `calib` is the share of
training groups that training kept aside to fit the temperature. Static quantization
calibrates its activation ranges on `calib`, so `val` stays untouched until it is scored.
Crops are read like eval's (`data.images.load_rgb`) and normalised by inference's own
`models.transforms.crops_to_tensor`, then scored by `score_crops`, the path `fakescope detect` runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fakescope.data import Sample
from fakescope.data.images import load_rgb
from fakescope.data.model_data import labelled_samples
from fakescope.detect.scoring import score_crops
from fakescope.evaluate import binary_metrics
from fakescope.models import get_pretrained_cfg
from fakescope.models.config import PretrainedCfg
from fakescope.models.onnx import OnnxModel
from fakescope.models.transforms import crops_to_tensor


def load_crops(samples: Sequence[Sample], cfg: PretrainedCfg) -> list[np.ndarray]:
    """uint8 RGB crops at the model's input size, read as `fakescope eval` reads them."""
    return [load_rgb(s.path, cfg.image_size) for s in samples]


def calibration_inputs(name: str, n: int, *, root: str | Path | None = None) -> np.ndarray:
    """`n` calib-split crops as the float32 (n, 3, H, W) batch inference would feed the model."""
    cfg = get_pretrained_cfg(name)
    crops = load_crops(labelled_samples(name, "calib", root=root, limit=n), cfg)
    return np.ascontiguousarray(crops_to_tensor(crops, cfg).numpy())


def evaluate_model(
    model: object, name: str, *, root: str | Path | None = None, limit: int | None = None, batch_size: int = 32
) -> dict[str, float]:
    """binary_metrics (auc, logloss, n, ...) of a torch or ONNX detector on the model's val split."""
    samples = labelled_samples(name, "val", root=root, limit=limit)
    probs = score_crops(model, load_crops(samples, model.pretrained_cfg), batch_size=batch_size)  # type: ignore[attr-defined]
    return binary_metrics([s.label for s in samples], probs)


def evaluate_variant(
    path: str | Path, *, root: str | Path | None = None, limit: int | None = None, threads: int | None = None
) -> dict[str, float]:
    """binary_metrics (auc, logloss, n, ...) of an exported .onnx on its model's val split (all of it by default)."""

    model = OnnxModel(path, threads=threads)
    return evaluate_model(model, model.name, root=root, limit=limit)
