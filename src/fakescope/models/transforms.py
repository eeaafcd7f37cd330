"""The one normaliser of model inputs, used by inference and by training alike.

Preprocessing comes from the model (`PretrainedCfg.mean` / `std`), as in timm's
`resolve_data_config`: a crop is scaled to [0, 1] and standardised with the statistics its
weights were trained with, whether it reaches the model through `fakescope detect`, training's
datasets or `fakescope eval`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from fakescope.models.config import PretrainedCfg


def normalize(images: torch.Tensor, cfg: PretrainedCfg) -> torch.Tensor:
    """uint8 RGB (..., 3, H, W) -> float32 scaled to [0, 1] and standardised with the model's mean/std."""
    x = images.float().div_(255.0)
    mean = torch.tensor(cfg.mean).view(-1, 1, 1)
    std = torch.tensor(cfg.std).view(-1, 1, 1)
    return (x - mean) / std


class Normalize:
    """`normalize` with a model's statistics bound: the last step of every training and eval transform."""

    def __init__(self, cfg: PretrainedCfg) -> None:
        self.cfg = cfg

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return normalize(images, self.cfg)


def eval_transform(cfg: PretrainedCfg) -> Normalize:
    """What a (3, H, W) uint8 image goes through before the model outside training: normalisation only."""
    return Normalize(cfg)


def crops_to_tensor(crops: Sequence[np.ndarray], cfg: PretrainedCfg) -> torch.Tensor:
    """uint8 RGB crops (N, H, W, 3) -> normalised float tensor (N, 3, H, W), channels_last."""
    batch = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2)
    return normalize(batch, cfg).contiguous(memory_format=torch.channels_last)
