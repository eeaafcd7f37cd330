"""Image datasets: face crops or whole pictures held in memory, read as inference reads them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from fakescope.data.samples import Sample
from fakescope.media.image import resize_whole


def load_rgb(path: Path, size: int, perturb: Callable[[Image.Image], Image.Image] | None = None) -> np.ndarray:
    """The file as size x size RGB (whole picture, bicubic, as at inference); `perturb` first."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        if perturb is not None:
            im = perturb(im)
        return resize_whole(np.asarray(im, dtype=np.uint8), size, size)


class FaceCropDataset(Dataset):
    """Face crops held in memory as uint8 (8,000 crops of 224 px ≈ 1.2 GB) for fast epochs on CPU."""

    def __init__(
        self,
        samples: Sequence[Sample],
        size: int,
        transform: Callable[[torch.Tensor], torch.Tensor],
        perturb: Callable[[Image.Image], Image.Image] | None = None,
    ) -> None:
        self.samples = list(samples)
        self.images = np.stack([load_rgb(s.path, size, perturb) for s in self.samples])
        self.labels = torch.tensor([s.label for s in self.samples], dtype=torch.long)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = torch.from_numpy(self.images[idx]).permute(2, 0, 1)
        return self.transform(image), self.labels[idx]
