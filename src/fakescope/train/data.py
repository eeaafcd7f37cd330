"""Labelled face-crop datasets (a folder with labels.csv: file,label[,original,split]).

Splits are made by source video (`original`), never by crop, so a real video and the fakes
made from it always land on the same side.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from fakescope.errors import FakescopeError

LABELS = {"REAL": 0, "FAKE": 1}


@dataclass(frozen=True)
class Sample:
    path: Path
    label: int
    group: str
    split: str


def read_labels_csv(root: Path) -> list[Sample]:
    """Parse `root/labels.csv`; a malformed row is an error naming the file and the line."""
    csv_path = root / "labels.csv"
    if not csv_path.is_file():
        raise FakescopeError(f"{csv_path}: not found (expected columns file,label[,original,split])")
    samples: list[Sample] = []
    with csv_path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        for missing in {"file", "label"} - set(reader.fieldnames or []):
            raise FakescopeError(f"{csv_path}: missing column {missing!r}")
        for line, row in enumerate(reader, start=2):
            label = (row.get("label") or "").strip().upper()
            if label not in LABELS:
                raise FakescopeError(f"{csv_path}:{line}: label must be REAL or FAKE, got {row.get('label')!r}")
            file = row["file"]
            samples.append(
                Sample(
                    path=root / file,
                    label=LABELS[label],
                    group=(row.get("original") or file).strip(),
                    split=(row.get("split") or "train").strip(),
                )
            )
    return samples


def split_groups(samples: Sequence[Sample], fraction: float, *, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Move `fraction` of the groups (not samples) into a second list, deterministically."""
    groups = sorted({s.group for s in samples})
    rng = random.Random(seed)
    rng.shuffle(groups)
    held = set(groups[: round(len(groups) * fraction)])
    return [s for s in samples if s.group not in held], [s for s in samples if s.group in held]


def load_rgb(path: Path, size: int) -> np.ndarray:
    with Image.open(path) as im:
        im = im.convert("RGB")
        if im.size != (size, size):
            im = im.resize((size, size), Image.Resampling.BICUBIC)
        return np.asarray(im, dtype=np.uint8)


class FaceCropDataset(Dataset):
    """Face crops held in memory as uint8 (8,000 crops of 224 px ≈ 1.2 GB) for fast epochs on CPU."""

    def __init__(self, samples: Sequence[Sample], size: int, transform: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.samples = list(samples)
        self.images = np.stack([load_rgb(s.path, size) for s in self.samples])
        self.labels = torch.tensor([s.label for s in self.samples], dtype=torch.long)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = torch.from_numpy(self.images[idx]).permute(2, 0, 1)
        return self.transform(image), self.labels[idx]
