"""Turn model inputs (face crops, whole pictures) into calibrated P(fake): one batched forward per media file."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from fakescope.faces import center_crop
from fakescope.media.image import resize_whole
from fakescope.models.base import ClassifierModel
from fakescope.models.config import PretrainedCfg
from fakescope.models.transforms import crops_to_tensor


def whole_image_input(image: np.ndarray, cfg: PretrainedCfg) -> np.ndarray:
    """What a model sees of a whole picture: all of it resized for input_kind "image", the centre square for "face"."""
    if cfg.input_kind == "image":
        return resize_whole(image, cfg.input_size[1], cfg.input_size[2])
    return center_crop(image, cfg.image_size)


def model_device(model: ClassifierModel) -> torch.device:
    """Where a model's inputs go: an ONNX Runtime model (models.onnx) names its device, a torch model's weights say it."""
    device = getattr(model, "device", None)
    return device if isinstance(device, torch.device) else next(model.parameters()).device


@torch.inference_mode()
def score_crops(model: ClassifierModel, crops: Sequence[np.ndarray], *, batch_size: int = 32) -> np.ndarray:
    """P(fake) per crop, in input order."""
    if len(crops) == 0:
        return np.zeros(0, dtype=np.float64)
    device = model_device(model)
    probs = []
    for start in range(0, len(crops), batch_size):
        batch = crops_to_tensor(crops[start : start + batch_size], model.pretrained_cfg).to(device)
        probs.append(model(batch)["prob"].float().cpu().numpy())
    return np.concatenate(probs).astype(np.float64)
