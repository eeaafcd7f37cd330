"""Image transforms for training and evaluation, built from the model's pretrained config."""

from __future__ import annotations

import io
import random

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2

from fakescope.models.config import PretrainedCfg


class RandomJpeg(torch.nn.Module):
    """Re-compress with a random JPEG quality: videos reach us compressed to varying degrees."""

    def __init__(self, quality: tuple[int, int] = (50, 95), p: float = 0.3) -> None:
        super().__init__()
        self.quality, self.p = quality, p

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if random.random() >= self.p:
            return image
        buf = io.BytesIO()
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(buf, format="JPEG", quality=random.randint(*self.quality))
        decoded = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
        return torch.from_numpy(decoded.copy()).permute(2, 0, 1)


def normalize(cfg: PretrainedCfg) -> v2.Transform:
    return v2.Compose([v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(cfg.mean), list(cfg.std))])


def train_transform(cfg: PretrainedCfg) -> v2.Transform:
    size = cfg.image_size
    return v2.Compose(
        [
            v2.RandomHorizontalFlip(),
            # Crops at inference come from another face detector: tolerate scale and offset shifts.
            v2.RandomResizedCrop(size, scale=(0.75, 1.0), ratio=(0.9, 1.1), antialias=True),
            # No hue jitter: it costs as much as the forward pass on CPU and face colour is not the cue.
            v2.RandomApply([v2.ColorJitter(0.2, 0.2, 0.15)], p=0.5),
            RandomJpeg(),
            v2.RandomApply([v2.GaussianBlur(5, sigma=(0.3, 1.5))], p=0.15),
            normalize(cfg),
        ]
    )


def eval_transform(cfg: PretrainedCfg) -> v2.Transform:
    return normalize(cfg)
