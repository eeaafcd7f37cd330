"""Self-blended images (SBI, Shiohara & Yamasaki, CVPR 2022): pseudo-fakes made from reals.

A face is blended with a slightly altered copy of itself: colour/frequency shifts and a small
misalignment inside a soft face-shaped mask. The result carries the traces every face swap
leaves (a blending boundary, colour and sharpness mismatch, doubled edges) without any one
generator's fingerprint, so a detector trained on them generalises to unseen manipulations.

SBI builds its mask from 81 dlib landmarks; we have MTCNN's five (eyes, nose, mouth corners)
and extrapolate the face outline from the eye-mouth geometry. Training crops are tight (the
DFDC crop is 0.8 x the face box), so the outline is also shrunk by a random factor: otherwise
the blending boundary would fall outside the crop, where the detector never sees it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from fakescope.data.images import FaceCropDataset
from fakescope.errors import FakescopeError

REAL, FAKE = 0, 1

# Face outline in the frame of the five landmarks: a point (a, b) lies at
# eye_centre + a * (right_eye - left_eye) + b * (mouth_centre - eye_centre).
# Jaw and brows follow dlib's mean 68-point face; the forehead row stands for SBI's 13 extra
# forehead points (the 81-landmark model).
_JAW = (
    (-1.15, 0.0),
    (-1.12, 0.45),
    (-1.0, 0.95),
    (-0.55, 1.3),
    (0.0, 1.42),
    (0.55, 1.3),
    (1.0, 0.95),
    (1.12, 0.45),
    (1.15, 0.0),
)
_BROWS = ((-1.05, -0.38), (-0.5, -0.48), (0.5, -0.48), (1.05, -0.38))
_FOREHEAD = ((-0.95, -0.75), (-0.55, -1.1), (0.0, -1.2), (0.55, -1.1), (0.95, -0.75))
_FACE_CENTRE_B = 0.5  # between the eyes and the mouth: the point the outline shrinks towards
_SHRINK = (0.55, 1.0)  # outline scale; below ~0.9 its boundary is visible in a tight crop
_BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)


def _outline(landmarks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Face outline points from five landmarks: with forehead (SBI's 81-point hull) or, one time
    in four, from the brows down (its 68-point hull), shrunk towards the face centre."""
    left_eye, right_eye, _, mouth_left, mouth_right = landmarks.astype(np.float64)
    eyes = (left_eye + right_eye) / 2
    across, down = right_eye - left_eye, (mouth_left + mouth_right) / 2 - eyes
    rows = _JAW + _BROWS if rng.random() < 0.25 else _JAW + _FOREHEAD
    ab = np.asarray(rows, dtype=np.float64)
    ab[:, 1] = _FACE_CENTRE_B + rng.uniform(*_SHRINK) * (ab[:, 1] - _FACE_CENTRE_B)
    ab[:, 0] *= rng.uniform(*_SHRINK)
    return eyes + ab[:, :1] * across + ab[:, 1:] * down


def _ellipse(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Face-sized ellipse for crops without landmarks: face crops are centred, a bit low."""
    centre = (round(width * rng.uniform(0.46, 0.54)), round(height * rng.uniform(0.5, 0.6)))
    axes = (round(width * rng.uniform(0.28, 0.45)), round(height * rng.uniform(0.35, 0.5)))
    return cv2.ellipse2Poly(centre, axes, 0, 0, 360, 10).astype(np.float64)


def _hull_mask(points: np.ndarray, height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), dtype=np.float32)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(points).astype(np.int32)), 1.0)
    return mask


def _lut(image: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Apply a per-channel mapping given as (256, 3) output levels, clipped to uint8."""
    table = np.clip(np.rint(levels), 0, 255).astype(np.uint8)
    return cv2.LUT(image, np.ascontiguousarray(table[:, None, :]))


def _colour(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """SBI's colour step: hue/saturation/value shift (p=0.5), RGB shift (p=0.3), brightness
    and contrast, each done as a per-channel table lookup (a fraction of a millisecond)."""
    levels = np.arange(256, dtype=np.float32)[:, None].repeat(3, axis=1)
    if rng.random() < 0.5:
        hsv_levels = levels.copy()
        hsv_levels[:180, 0] = (levels[:180, 0] + rng.integers(-4, 5)) % 180
        hsv_levels[:, 1:] *= rng.uniform(0.85, 1.15, size=2).astype(np.float32)
        image = cv2.cvtColor(_lut(cv2.cvtColor(image, cv2.COLOR_RGB2HSV), hsv_levels), cv2.COLOR_HSV2RGB)
    contrast = rng.uniform(0.9, 1.1)
    shift = rng.uniform(-0.1, 0.1) * 255 + (1 - contrast) * 127.5
    if rng.random() < 0.3:
        shift = shift + rng.uniform(-20, 20, size=3)
    return _lut(image, levels * contrast + shift)


def _frequency(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """SBI's frequency step: down-up resampling (blur, blocky edges) or sharpening."""
    height, width = image.shape[:2]
    if rng.random() < 0.5:
        factor = rng.uniform(2.0, 4.0)
        size = (max(1, round(width / factor)), max(1, round(height / factor)))
        small = cv2.resize(image, size, interpolation=cv2.INTER_NEAREST)
        return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    alpha, lightness = rng.uniform(0.2, 0.5), rng.uniform(0.5, 1.0)
    sharpen = np.array([[-1, -1, -1], [-1, 8 + lightness, -1], [-1, -1, -1]], dtype=np.float32)
    identity = np.zeros((3, 3), dtype=np.float32)
    identity[1, 1] = 1
    return cv2.filter2D(image, -1, (1 - alpha) * identity + alpha * sharpen)


def _source(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The altered copy: a colour change, a frequency change, or both (equally often)."""
    kind = rng.integers(3)
    if kind != 1:
        image = _colour(image, rng)
    if kind != 0:
        image = _frequency(image, rng)
    return image


def _affine(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """SBI's misalignment: scale 0.95-1.05, shift up to 3% across and 1.5% down."""
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), 0.0, rng.uniform(0.95, 1 / 0.95))
    matrix[:, 2] += (rng.uniform(-0.03, 0.03) * width, rng.uniform(-0.015, 0.015) * height)
    return matrix


@functools.lru_cache(maxsize=8)
def _pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return xs, ys


def _deform(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Elastic warp (a smooth random field), random erosion or dilation, then a soft edge.

    Sizes follow SBI's (tuned on ~256-px faces) scaled to the mask's side.
    """
    height, width = mask.shape
    unit = min(height, width) / 256
    coarse = rng.normal(0, 4 * unit, size=(4, 4, 2)).astype(np.float32)
    field = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    xs, ys = _pixel_grid(height, width)
    mask = cv2.remap(mask, xs + field[..., 0], ys + field[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    radius = int(rng.integers(0, max(1, round(10 * unit)) + 1))
    if radius:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        morphed = (cv2.erode if rng.random() < 0.5 else cv2.dilate)(mask, kernel, borderType=cv2.BORDER_REPLICATE)
        mask = morphed if morphed.max() > 0 else mask
    size = 2 * int(rng.integers(max(2, round(2 * unit)), max(3, round(12 * unit)) + 1)) + 1
    return cv2.GaussianBlur(mask, (size, size), rng.uniform(5, 45) * unit, borderType=cv2.BORDER_REPLICATE)


def _check(image: np.ndarray, landmarks: np.ndarray | None) -> None:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
    if landmarks is not None and np.shape(landmarks) != (5, 2):
        raise ValueError(f"expected (5, 2) landmarks (eyes, nose, mouth corners), got {np.shape(landmarks)}")


def self_blend(image: np.ndarray, landmarks: np.ndarray | None, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A pseudo-fake of `image` and its blending mask (float32, H x W, in [0, 1]).

    `out = source * mask + image * (1 - mask)`, where the source is `image` with colour and/or
    frequency changes and a small shift/scale. `landmarks` are MTCNN's five points in the
    image's pixels; without them an ellipse around the centre stands in for the face.
    Pixels where the mask is 0 are returned unchanged; the same `rng` state gives the same output.
    """
    source, mask = self_blend_parts(image, landmarks, rng)
    return cv2.blendLinear(source, np.ascontiguousarray(image), mask, 1.0 - mask), mask


def self_blend_parts(image: np.ndarray, landmarks: np.ndarray | None, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The altered source and the mask `self_blend` mixes, before mixing: sequence blending
    (`sbi_sequences`) moves them a little per frame. The draws from `rng` depend only on the
    image size and on whether the landmarks give a face, never on pixel values."""
    _check(image, landmarks)
    height, width = image.shape[:2]
    mask = _hull_mask(_outline(np.asarray(landmarks), rng), height, width) if landmarks is not None else None
    if mask is None or mask.max() == 0:
        mask = _hull_mask(_ellipse(height, width, rng), height, width)
    matrix = _affine(height, width, rng)
    size = (width, height)
    source = cv2.warpAffine(_source(image, rng), matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    mask = cv2.warpAffine(mask, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mask = _deform(mask, rng)
    mask *= np.float32(rng.choice(_BLEND_RATIOS) / max(float(mask.max()), 1e-6))
    np.clip(mask, 0.0, 1.0, out=mask)
    return source, mask


def resized_landmarks(points: np.ndarray | None, path: Path, size: tuple[int, int]) -> np.ndarray | None:
    """Map landmarks from the file's pixels to a crop resized to `size` (H, W)."""
    if points is None:
        return None
    with Image.open(path) as im:
        width, height = im.size
    return (points * np.array([size[1] / width, size[0] / height], dtype=np.float32)).astype(np.float32)


class SelfBlendedDataset(Dataset):
    """Face crops where each REAL becomes an SBI pseudo-fake (label FAKE) with probability `p`.

    `images` is an (N, H, W, 3) uint8 array (as `FaceCropDataset.images`), `landmarks` one
    (5, 2) array or None per image. `transform` takes a CHW uint8 tensor (torchvision v2).
    Each item draws a fresh seed from torch's RNG, which DataLoader seeds per worker and per
    epoch, so workers never repeat each other and `torch.manual_seed` makes a run repeatable.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: Sequence[int] | torch.Tensor,
        landmarks: Sequence[np.ndarray | None],
        *,
        p: float,
        transform: Callable[[torch.Tensor], torch.Tensor],
    ) -> None:
        if not 0.0 <= p <= 1.0:
            raise FakescopeError(f"sbi p must be in [0, 1], got {p}")
        if not len(images) == len(labels) == len(landmarks):
            counts = f"{len(images)} images, {len(labels)} labels, {len(landmarks)} landmark entries"
            raise FakescopeError(f"sbi: need one label and one landmark entry per image, got {counts}")
        self.images = images
        self.labels = torch.as_tensor(labels, dtype=torch.long)
        self.landmarks = list(landmarks)
        self.p = p
        self.transform = transform

    @classmethod
    def from_face_crops(
        cls,
        dataset: FaceCropDataset,
        landmarks: Mapping[str, np.ndarray | None],
        *,
        p: float,
        transform: Callable[[torch.Tensor], torch.Tensor],
    ) -> SelfBlendedDataset:
        """Wrap a `FaceCropDataset`, with `landmarks` from `face_landmarks` keyed by `str(path)`.

        Points are rescaled from each file's own size to the dataset's resized crops.
        """
        size = dataset.images.shape[1:3]
        points = [resized_landmarks(landmarks.get(str(s.path)), s.path, size) for s in dataset.samples]
        return cls(dataset.images, dataset.labels, points, p=p, transform=transform)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, label = self.images[idx], int(self.labels[idx])
        if label == REAL and self.p > 0:
            seed = int(torch.randint(0, 2**62, (1,)).item())
            rng = np.random.default_rng([seed, idx])
            if rng.random() < self.p:
                image, label = self_blend(image, self.landmarks[idx], rng)[0], FAKE
        tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
        return self.transform(tensor), torch.tensor(label, dtype=torch.long)
