"""Labelled datasets for training, split train/val by group so nothing leaks into val.

Three layouts are recognised by `load_samples`:

- `labels.csv` (file,label[,original|group|speaker][,split]): face crops or images;
- `real/` and `fake/` image folders (any case), one group per file;
- DFDC videos with `metadata.json`: faces are cut once with the inference pipeline's own
  detector, tracker and crop geometry (`train.crop_cache`) and then read like a labels.csv.

A group is what must never straddle the split: the source video (a real video and every fake
made from it), a speaker, or the file itself when nothing better is known.
"""

from __future__ import annotations

import csv
import json
import logging
import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from fakescope.errors import FakescopeError
from fakescope.media.files import IMAGE_EXTENSIONS
from fakescope.media.image import resize_whole

if TYPE_CHECKING:
    from fakescope.faces import FaceDetector
    from fakescope.models.config import PretrainedCfg

log = logging.getLogger(__name__)

LABELS = {"REAL": 0, "FAKE": 1}
SPLITS = ("train", "val")
# Columns naming the unit that must stay on one side of the split, most specific first.
# `source` is not one: in ai_faces it names the generator, which is the class itself.
GROUP_COLUMNS = ("original", "group", "speaker")
DEFAULT_CACHE_ROOT = Path("runs/crop_cache")


@dataclass(frozen=True)
class Sample:
    """One labelled file; `info` keeps the other labels.csv columns (source, generator, family, ...)."""

    path: Path
    label: int
    group: str
    split: str
    info: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class VideoSample:
    """A labelled video; `group` is its source real video, shared by the fakes made from it."""

    path: Path
    label: int
    group: str
    split: str | None = None


T = TypeVar("T", Sample, VideoSample)


def read_labels_csv(root: Path, *, default_split: str = "train") -> list[Sample]:
    """Parse `root/labels.csv`; a malformed row is an error naming the file and the line.

    Rows without a split get `default_split` ("" marks them unassigned for `load_samples`).
    """
    csv_path = root / "labels.csv"
    if not csv_path.is_file():
        raise FakescopeError(f"{csv_path}: not found (expected columns file,label[,original,split])")
    with csv_path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        for missing in {"file", "label"} - set(reader.fieldnames or []):
            raise FakescopeError(f"{csv_path}: missing column {missing!r}")
        return [_csv_sample(root, f"{csv_path}:{line}", row, default_split) for line, row in enumerate(reader, start=2)]


def _csv_sample(root: Path, where: str, row: dict[str, Any], default_split: str) -> Sample:
    label = (row.get("label") or "").strip().upper()
    if label not in LABELS:
        raise FakescopeError(f"{where}: label must be REAL or FAKE, got {row.get('label')!r}")
    split = (row.get("split") or "").strip().lower()
    if split and split not in SPLITS:
        raise FakescopeError(f"{where}: split must be train or val, got {row.get('split')!r}")
    file = (row.get("file") or "").strip()
    if not file:
        raise FakescopeError(f"{where}: empty file name")
    group = next((row[c].strip() for c in GROUP_COLUMNS if (row.get(c) or "").strip()), file)
    info = {k: (v or "").strip() for k, v in row.items() if k and k not in ("file", "label", "split")}
    return Sample(path=root / file, label=LABELS[label], group=group, split=split or default_split, info=info)


def read_class_folders(root: Path, extensions: frozenset[str] = IMAGE_EXTENSIONS) -> list[Sample]:
    """Files under `root/real/**` and `root/fake/**` (folder names in any case), unsplit.

    Each file is its own group: without identity information nothing better is known.
    `extensions`: IMAGE_EXTENSIONS for image models, AUDIO_EXTENSIONS for speech models.
    """
    samples = [
        Sample(path=path, label=label, group=path.relative_to(root).as_posix(), split="")
        for folder, label in class_folders(root)
        for path in _files_under(folder, extensions)
    ]
    if not samples:
        raise FakescopeError(f"{root}: no files under real/ or fake/ (extensions: {', '.join(sorted(extensions))})")
    return samples


def class_folders(root: Path) -> list[tuple[Path, int]]:
    """`(folder, label)` for each child folder named real or fake, whatever its case."""
    children = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    return [(p, LABELS[p.name.upper()]) for p in children if p.name.upper() in LABELS]


def _files_under(folder: Path, extensions: frozenset[str]) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in extensions
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def read_dfdc_metadata(root: Path) -> list[VideoSample]:
    """Videos listed in DFDC's `root/metadata.json`: `{"x.mp4": {"label", "original", "split"}}`.

    A fake's group is its `original`, a real's group is itself, so a real and its fakes share
    one group. Any malformed entry is an error naming the file and the key.
    """
    path = root / "metadata.json"
    entries = _load_metadata(path)
    if not entries:
        raise FakescopeError(f"{path}: lists no videos")
    return [_video_sample(root, path, name, entry) for name, entry in entries.items()]


def _load_metadata(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise FakescopeError(f"{path}: not found") from err
    except UnicodeDecodeError as err:
        raise FakescopeError(f"{path}: not UTF-8 text") from err
    except json.JSONDecodeError as err:
        raise FakescopeError(f"{path}: not valid JSON (line {err.lineno} column {err.colno})") from err
    if not isinstance(data, dict):
        raise FakescopeError(f"{path}: top level must be an object mapping video file to its entry, got {type(data).__name__}")
    return data


def _video_sample(root: Path, path: Path, name: str, entry: Any) -> VideoSample:
    where = f"{path}: {name!r}"
    if not isinstance(entry, dict):
        raise FakescopeError(f"{where}: entry must be an object, got {type(entry).__name__}")
    if "label" not in entry:
        raise FakescopeError(f"{where}: missing key 'label'")
    label = entry["label"].strip().upper() if isinstance(entry["label"], str) else None
    if label not in LABELS:
        raise FakescopeError(f"{where}: label must be REAL or FAKE, got {entry['label']!r}")
    original = entry.get("original")
    if original is not None and not (isinstance(original, str) and original.strip()):
        raise FakescopeError(f"{where}: original must be a video file name or null, got {original!r}")
    split = entry.get("split")
    if split is not None and split not in SPLITS:
        raise FakescopeError(f"{where}: split must be train or val, got {split!r}")
    video = root / name
    if not video.is_file():
        raise FakescopeError(f"{where} listed but file not found")
    source = original.strip() if label == "FAKE" and original else name
    return VideoSample(path=video, label=LABELS[label], group=Path(source).name, split=split)


@dataclass
class Splits:
    """train: what the weights see; calib: held-out train groups that pick the epoch, the
    temperature and the thresholds (and fit stacks); val: touched only to report."""

    train: list[Sample]
    calib: list[Sample]
    val: list[Sample]


def three_way_split(samples: Sequence[Sample], calib_fraction: float, *, seed: int) -> Splits:
    """The dataset's train/val split with `calib_fraction` of the train groups moved to calib."""
    train, calib = split_groups([s for s in samples if s.split == "train"], calib_fraction, seed=seed)
    return Splits(train, calib, [s for s in samples if s.split == "val"])


def split_groups(samples: Sequence[Sample], fraction: float, *, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Move `fraction` of the groups (not samples) into a second list, deterministically."""
    groups = sorted({s.group for s in samples})
    rng = random.Random(seed)
    rng.shuffle(groups)
    held = set(groups[: round(len(groups) * fraction)])
    return [s for s in samples if s.group not in held], [s for s in samples if s.group in held]


def stratified_split_groups(samples: Sequence[T], fraction: float, *, seed: int) -> tuple[list[T], list[T]]:
    """`split_groups` done per stratum of groups with the same labels, so val keeps the class ratio.

    A group holding a real and its fakes is one stratum, all-real and all-fake groups are others.
    """
    if not 0.0 <= fraction < 1.0:
        raise FakescopeError(f"val fraction must be in [0, 1), got {fraction}")
    labels: dict[str, set[int]] = defaultdict(set)
    for s in samples:
        labels[s.group].add(s.label)
    strata: dict[tuple[int, ...], list[str]] = defaultdict(list)
    for group in sorted(labels):
        strata[tuple(sorted(labels[group]))].append(group)
    rng = random.Random(seed)
    held: set[str] = set()
    for key in sorted(strata):
        groups = strata[key]
        rng.shuffle(groups)
        held.update(groups[: round(len(groups) * fraction)])
    return [s for s in samples if s.group not in held], [s for s in samples if s.group in held]


def assign_splits(items: Sequence[T], val_fraction: float, *, seed: int, source: Path) -> list[T]:
    """Every item with split train or val, in the input order.

    Declared splits are kept when they name a val set (and are checked for leaks); when none
    is declared, or only train (DFDC's own metadata says train everywhere), groups are split
    with `stratified_split_groups`. Empty splits next to a declared val set are an error.
    """
    declared = {item.split or "" for item in items}
    if "val" in declared:
        if "" in declared:
            missing = next(item for item in items if not item.split)
            raise FakescopeError(f"{source}: {missing.path.name!r} has no split but other rows do")
        check_no_leakage(items, source)
        return list(items)
    if "train" in declared:
        log.info("%s: no val split declared; holding out %.0f%% of the groups", source, 100 * val_fraction)
    _, val = stratified_split_groups(items, val_fraction, seed=seed)
    held = {item.group for item in val}
    return [replace(item, split="val" if item.group in held else "train") for item in items]


def check_no_leakage(items: Sequence[Sample | VideoSample], source: Path) -> None:
    """Raise if a group has members in both train and val (its val score would be inflated)."""
    splits: dict[str, set[str]] = defaultdict(set)
    for item in items:
        splits[item.group].add(item.split or "")
    leaked = sorted(group for group, names in splits.items() if len(names) > 1)
    if leaked:
        raise FakescopeError(f"{source}: group {leaked[0]!r} is in both train and val ({len(leaked)} groups leak)")


def load_samples(
    root: Path,
    *,
    val_fraction: float = 0.15,
    seed: int = 20261123,
    crop_cache: Path | None = None,
    frames_per_video: int = 8,
    face_cfg: PretrainedCfg | None = None,
    face_detector: FaceDetector | None = None,
    extensions: frozenset[str] = IMAGE_EXTENSIONS,
) -> list[Sample]:
    """Labelled files from any supported layout, each with split train or val.

    Videos (`metadata.json`) are turned into face crops under `crop_cache` (default
    `runs/crop_cache/<folder name>`), cut with `face_cfg`'s margin, shift and size (default:
    the default model's) by `face_detector` (default MTCNN with the Haar fallback).
    """
    root = Path(root)
    if not root.is_dir():
        raise FakescopeError(f"{root}: no such folder")
    if (root / "labels.csv").is_file():
        samples = read_labels_csv(root, default_split="")
        return assign_splits(samples, val_fraction, seed=seed, source=root / "labels.csv")
    if (root / "metadata.json").is_file():
        videos = assign_splits(read_dfdc_metadata(root), val_fraction, seed=seed, source=root / "metadata.json")
        return _video_crops(root, videos, crop_cache, frames_per_video, face_cfg, face_detector)
    if class_folders(root):
        return assign_splits(read_class_folders(root, extensions), val_fraction, seed=seed, source=root)
    raise FakescopeError(f"{root}: no labels.csv, metadata.json or real/ and fake/ folders")


def _video_crops(
    root: Path,
    videos: list[VideoSample],
    crop_cache: Path | None,
    frames_per_video: int,
    face_cfg: PretrainedCfg | None,
    face_detector: FaceDetector | None,
) -> list[Sample]:
    from fakescope.faces import create_face_detector
    from fakescope.models import DEFAULT_MODEL, get_pretrained_cfg
    from fakescope.train.crop_cache import extract_face_crops

    cfg = face_cfg or get_pretrained_cfg(DEFAULT_MODEL)
    return extract_face_crops(
        videos,
        crop_cache or DEFAULT_CACHE_ROOT / root.resolve().name,
        frames_per_video=frames_per_video,
        size=cfg.image_size,
        margin=cfg.face_margin,
        shift=cfg.face_shift,
        face_detector=face_detector or create_face_detector("mtcnn"),
    )


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
