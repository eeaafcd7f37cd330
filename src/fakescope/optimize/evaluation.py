"""Labelled crops for calibrating and checking exported models, split and preprocessed as the platform does.

The split is rebuilt from the model card (val fraction, calib fraction, seed), as `fakescope
eval` and training do: `val` is the held-out set the card reports on; `calib` is the share of
training groups that training kept aside to fit the temperature. Static quantization
calibrates its activation ranges on `calib`, so `val` stays untouched until it is scored.
Crops are read like eval's (`train.data.load_rgb`) and normalised by inference's own
`detect.scoring.crops_to_tensor`, then scored by `score_crops`, the path `fakescope detect` runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from fakescope.detect.scoring import crops_to_tensor, score_crops
from fakescope.errors import FakescopeError
from fakescope.evaluate import binary_metrics
from fakescope.models import get_pretrained_cfg
from fakescope.models.config import PretrainedCfg
from fakescope.train.data import Sample, load_rgb, load_samples, three_way_split

Split = Literal["val", "calib"]


def recorded_split(cfg: PretrainedCfg) -> tuple[float, float, int]:
    """(val_fraction, calib_fraction, seed) of the run behind the weights, or the platform's defaults."""
    recorded = cfg.training_split()
    if recorded is not None:
        return recorded
    from fakescope.train.config import DataCfg, TrainConfig

    fields = DataCfg.model_fields
    return fields["val_fraction"].default, fields["calib_fraction"].default, TrainConfig.model_fields["seed"].default


def data_root(cfg: PretrainedCfg, root: str | Path | None = None) -> Path:
    """The labelled folder the model was trained on (from its card), unless `root` names one."""
    if root is None:
        recorded = cfg.extra.get("config", {}).get("data", {}).get("root")
        if not recorded:
            raise FakescopeError("the model card does not name its training data: pass the labelled data folder")
        root = recorded
    path = Path(root)
    if not path.is_dir():
        raise FakescopeError(f"{path}: labelled data folder not found (pass the folder the model was trained on)")
    return path


def labelled_samples(name: str, split: Split, *, root: str | Path | None = None, limit: int | None = None) -> list[Sample]:
    """The model's `split` samples; `limit` keeps a class-balanced, seeded subset (for quick checks)."""
    cfg = get_pretrained_cfg(name)
    val_fraction, calib_fraction, seed = recorded_split(cfg)
    samples = load_samples(data_root(cfg, root), val_fraction=val_fraction, seed=seed)
    chosen = getattr(three_way_split(samples, calib_fraction, seed=seed), split)
    if not chosen:
        raise FakescopeError(f"{name}: the {split} split of its data is empty")
    return balanced_subset(chosen, limit, seed=seed) if limit else chosen


def balanced_subset(samples: Sequence[Sample], n: int, *, seed: int) -> list[Sample]:
    """About n samples, half of each class where possible, in their original order."""
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for label in (0, 1):
        idx = [i for i, s in enumerate(samples) if s.label == label]
        keep += rng.choice(idx, min(len(idx), (n + label) // 2), replace=False).tolist() if idx else []
    return [samples[i] for i in sorted(keep)]


def load_crops(samples: Sequence[Sample], cfg: PretrainedCfg) -> list[np.ndarray]:
    """uint8 RGB crops at the model's input size, read as `fakescope eval` reads them."""
    return [load_rgb(s.path, cfg.image_size) for s in samples]


def calibration_inputs(name: str, n: int, *, root: str | Path | None = None) -> np.ndarray:
    """`n` calib-split crops as the float32 (n, 3, H, W) batch inference would feed the model."""
    cfg = get_pretrained_cfg(name)
    crops = load_crops(labelled_samples(name, "calib", root=root, limit=n), cfg)
    return np.ascontiguousarray(crops_to_tensor(crops, cfg).numpy())


def evaluate_model(model: object, name: str, *, root: str | Path | None = None, limit: int | None = None,
                   batch_size: int = 32) -> dict[str, float]:
    """binary_metrics (auc, logloss, n, ...) of a torch or ONNX detector on the model's val split."""
    samples = labelled_samples(name, "val", root=root, limit=limit)
    probs = score_crops(model, load_crops(samples, model.pretrained_cfg), batch_size=batch_size)  # type: ignore[attr-defined]
    return binary_metrics([s.label for s in samples], probs)


def evaluate_variant(path: str | Path, *, root: str | Path | None = None, limit: int | None = None,
                     threads: int | None = None) -> dict[str, float]:
    """binary_metrics (auc, logloss, n, ...) of an exported .onnx on its model's val split (all of it by default)."""
    from fakescope.optimize.runtime import OnnxDetector

    model = OnnxDetector(path, threads=threads)
    return evaluate_model(model, model.name, root=root, limit=limit)
