"""Image transforms for training and evaluation, built from the model's pretrained config."""

from __future__ import annotations

import io
import math
import random
from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2

from fakescope.errors import FakescopeError
from fakescope.models.config import PretrainedCfg
from fakescope.models.transforms import eval_transform


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


class RandomDownscale(torch.nn.Module):
    """Shrink by a random factor and scale back: faces in low-resolution or distant video
    reach the model as upsampled blur (DFDC face boxes range from 36 to 554 px)."""

    def __init__(self, scale: tuple[float, float] = (0.5, 1.0), p: float = 0.3) -> None:
        super().__init__()
        self.scale, self.p = scale, p

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if random.random() >= self.p:
            return image
        height, width = image.shape[-2:]
        factor = random.uniform(*self.scale)
        pixels = np.ascontiguousarray(image.permute(1, 2, 0).numpy())
        small = cv2.resize(pixels, (max(1, round(width * factor)), max(1, round(height * factor))), interpolation=cv2.INTER_AREA)
        restored = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
        return torch.from_numpy(restored).permute(2, 0, 1)


AUG_DEFAULTS: dict[str, Any] = {
    "hflip": 0.5,
    "resized_crop_scale": (0.75, 1.0),
    "color_jitter": 0.5,
    "jpeg": {"p": 0.3, "quality": (50, 95)},
    "blur": 0.15,
    "downscale": {"p": 0.0, "scale": (0.5, 1.0)},
}


def _probability(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise FakescopeError(f"augmentation {key}: expected a probability in [0, 1], got {value!r}")
    return float(value)


def _range(key: str, value: Any, lo: float, hi: float) -> tuple[float, float]:
    ok = (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        and lo <= value[0] <= value[1] <= hi
    )
    if not ok:
        raise FakescopeError(f"augmentation {key}: expected [low, high] with {lo} <= low <= high <= {hi}, got {value!r}")
    return float(value[0]), float(value[1])


def _section(key: str, value: Any) -> dict[str, Any]:
    """A nested entry ({p, quality} / {p, scale}) merged over its defaults; unknown sub-keys fail."""
    if not isinstance(value, Mapping):
        raise FakescopeError(f"augmentation {key}: expected a mapping with keys {sorted(AUG_DEFAULTS[key])}, got {value!r}")
    for sub in value:
        if sub not in AUG_DEFAULTS[key]:
            raise FakescopeError(f"augmentation {key}: unknown key {sub!r} (known: {', '.join(sorted(AUG_DEFAULTS[key]))})")
    return {**AUG_DEFAULTS[key], **value}


def build_train_transform(cfg: PretrainedCfg, aug: Mapping[str, Any]) -> v2.Transform:
    """Training transform for CHW uint8 crops; every key of `aug` is optional.

    Defaults reproduce `train_transform`. Keys:

    - `hflip`: probability of a horizontal flip (0.5).
    - `resized_crop_scale`: `[lo, hi]` area fraction kept by the random resized crop
      ([0.75, 1.0]); inference crops come from another detector, so scale and offset shift.
    - `color_jitter`: probability of brightness 0.2 / contrast 0.2 / saturation 0.15 jitter
      (0.5); 0 disables it. No hue: it costs a forward pass on CPU and colour is not the cue.
    - `jpeg`: `{p, quality: [lo, hi]}` re-compression ({p: 0.3, quality: [50, 95]}).
    - `blur`: probability of a Gaussian blur, kernel 5, sigma 0.3-1.5 (0.15).
    - `downscale`: `{p, scale: [lo, hi]}` shrink by a factor in the range and scale back,
      like low-resolution video ({p: 0, scale: [0.5, 1.0]}, i.e. off).

    An unknown key, or a value out of range, raises FakescopeError naming it.
    """
    for key in aug:
        if key not in AUG_DEFAULTS:
            raise FakescopeError(f"unknown augmentation {key!r} (known: {', '.join(AUG_DEFAULTS)})")
    opts = {**AUG_DEFAULTS, **aug}
    jpeg, downscale = _section("jpeg", opts["jpeg"]), _section("downscale", opts["downscale"])
    steps: list[torch.nn.Module] = []
    if (hflip := _probability("hflip", opts["hflip"])) > 0:
        steps.append(v2.RandomHorizontalFlip(hflip))
    steps.append(
        v2.RandomResizedCrop(
            cfg.image_size,
            scale=_range("resized_crop_scale", opts["resized_crop_scale"], 0.01, 1.0),
            ratio=(0.9, 1.1),
            antialias=True,
        )
    )
    if (jitter := _probability("color_jitter", opts["color_jitter"])) > 0:
        steps.append(v2.RandomApply([v2.ColorJitter(0.2, 0.2, 0.15)], p=jitter))
    if (down_p := _probability("downscale.p", downscale["p"])) > 0:
        steps.append(RandomDownscale(_range("downscale.scale", downscale["scale"], 0.05, 1.0), p=down_p))
    if (jpeg_p := _probability("jpeg.p", jpeg["p"])) > 0:
        quality = _range("jpeg.quality", jpeg["quality"], 1, 100)
        if quality != (int(quality[0]), int(quality[1])):
            raise FakescopeError(f"augmentation jpeg.quality: expected whole numbers, got {jpeg['quality']!r}")
        steps.append(RandomJpeg((int(quality[0]), int(quality[1])), p=jpeg_p))
    if (blur := _probability("blur", opts["blur"])) > 0:
        steps.append(v2.RandomApply([v2.GaussianBlur(5, sigma=(0.3, 1.5))], p=blur))
    steps.append(eval_transform(cfg))
    return v2.Compose(steps)


def train_transform(cfg: PretrainedCfg) -> v2.Transform:
    return build_train_transform(cfg, {})


def cutmix(
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    alpha: float = 1.0,
    p: float = 0.5,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """CutMix (Yun et al., 2019) on a batch: with probability `p`, paste one random box from a
    shuffled copy of the batch into every image; labels become float, mixed by box area.

    The box covers a Beta(alpha, alpha) share of the image (less where it is clipped at the
    border; the labels use the clipped area). All randomness comes from `generator` (torch's
    global RNG when None), so a seeded generator gives the same batch.
    """
    if images.ndim != 4 or labels.shape != images.shape[:1]:
        raise ValueError(f"expected images (B, C, H, W) and labels (B,), got {tuple(images.shape)} and {tuple(labels.shape)}")
    soft = labels.float()
    if torch.rand((), generator=generator).item() >= p or len(images) < 2:
        return images, soft
    rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=generator).item()))
    height, width = images.shape[-2:]
    side = math.sqrt(1.0 - rng.beta(alpha, alpha))
    cut_h, cut_w = round(height * side), round(width * side)
    cy, cx = int(rng.integers(height)), int(rng.integers(width))
    y1, y2 = max(cy - cut_h // 2, 0), min(cy + cut_h - cut_h // 2, height)
    x1, x2 = max(cx - cut_w // 2, 0), min(cx + cut_w - cut_w // 2, width)
    order = torch.randperm(len(images), generator=generator)
    mixed = images.clone()
    mixed[:, :, y1:y2, x1:x2] = images[order, :, y1:y2, x1:x2]
    area = (y2 - y1) * (x2 - x1) / (height * width)
    return mixed, soft * (1.0 - area) + soft[order] * area


def cutmix_sequences(
    x: torch.Tensor,
    mask: torch.Tensor,
    labels: torch.Tensor,
    *,
    alpha: float = 1.0,
    p: float = 0.5,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CutMix for clips: with probability `p`, one span of consecutive frames (a Beta(alpha, alpha) share of
    the T frames) of every sequence comes from a shuffled partner instead, frames and mask alike; labels
    become float, mixed by the share of frames swapped. A swap mid-sequence is what a temporal model must
    notice (a face that changes), and the frame-level images stay whole. `x` is (B, T, ...): pixels or
    cached frame features."""
    if x.ndim < 3 or mask.shape != x.shape[:2] or labels.shape != x.shape[:1]:
        raise ValueError(
            f"expected x (B, T, ...), mask (B, T), labels (B,); got {tuple(x.shape)}, {tuple(mask.shape)}, {tuple(labels.shape)}"
        )
    soft = labels.float()
    if torch.rand((), generator=generator).item() >= p or len(x) < 2:
        return x, mask, soft
    rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=generator).item()))
    frames = x.shape[1]
    span = int(round(frames * rng.beta(alpha, alpha)))
    start = int(rng.integers(0, frames - span + 1))
    order = torch.randperm(len(x), generator=generator)
    mixed, mixed_mask = x.clone(), mask.clone()
    mixed[:, start : start + span] = x[order, start : start + span]
    mixed_mask[:, start : start + span] = mask[order, start : start + span]
    share = span / frames
    return mixed, mixed_mask, soft * (1.0 - share) + soft[order] * share
