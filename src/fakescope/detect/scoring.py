"""Turn model inputs (face crops, whole pictures, face tracks) into calibrated P(fake): one batched forward per media
file (per face track for a temporal model)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from fakescope.detect.fusion import track_score
from fakescope.faces import center_crop
from fakescope.media.image import resize_whole
from fakescope.models.base import ClassifierModel
from fakescope.models.config import PretrainedCfg
from fakescope.models.temporal import SequenceModel
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


@dataclass
class TrackScores:
    """A temporal model's view of one face track: each crop's P(fake) (the mean of the sequences holding it), each
    crop's attention relative to an even share (1.0; the mean over the sequences holding it: which frames drove
    the score) and the track's score (the pipeline's track score over its sequences)."""

    frames: np.ndarray
    attention: np.ndarray
    score: float


@torch.inference_mode()
def score_track(model: SequenceModel, crops: Sequence[np.ndarray]) -> TrackScores:
    """A face track's crops (in time order) through a temporal model, each crop encoded once."""
    frames = crops_to_tensor(crops, model.pretrained_cfg).to(model_device(model))
    starts, probs, attention = model.score_track(frames)
    probs, attention = probs.float().cpu().numpy(), attention.float().cpu().numpy()
    total, relative, count = np.zeros(len(crops)), np.zeros(len(crops)), np.zeros(len(crops))
    for row, start in enumerate(starts):
        held = slice(start, min(start + attention.shape[1], len(crops)))
        n = held.stop - held.start
        total[held] += probs[row]
        relative[held] += attention[row, :n] * n
        count[held] += 1
    return TrackScores(total / count, relative / count, track_score(probs))
