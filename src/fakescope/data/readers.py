"""Readers of labelled folders: three layouts, each turned into `Sample`s with a train/val split.

- `labels.csv` (file,label[,original|group|speaker][,split]): face crops, images or speech clips;
- `real/` and `fake/` folders (any case), one group per file;
- DFDC videos with `metadata.json`: faces are cut once with the inference pipeline's own
  detector, tracker and crop geometry (`data.crop_cache`) and then read like a labels.csv.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fakescope.constants import DEFAULT_MODEL
from fakescope.data.crop_cache import DEFAULT_CACHE_ROOT, extract_face_crops
from fakescope.data.samples import LABELS, SPLITS, Sample, VideoSample
from fakescope.data.splits import DEFAULT_SEED, DEFAULT_VAL_FRACTION, assign_splits
from fakescope.errors import FakescopeError
from fakescope.media.files import IMAGE_EXTENSIONS

if TYPE_CHECKING:
    from fakescope.faces import FaceDetector
    from fakescope.models.config import PretrainedCfg

# Columns naming the unit that must stay on one side of the split, most specific first.
# `source` is not one: in ai_faces it names the generator, which is the class itself.
GROUP_COLUMNS = ("original", "group", "speaker", "person")


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
    """Videos listed in DFDC's `root/metadata.json`: `{"x.mp4": {"label", "original", "split"}}` (and `dataset`).

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
    dataset = entry.get("dataset")
    if dataset is not None and not (isinstance(dataset, str) and dataset.strip()):
        raise FakescopeError(f"{where}: dataset must be a name or null, got {dataset!r}")
    source = original.strip() if label == "FAKE" and original else name
    return VideoSample(path=video, label=LABELS[label], group=Path(source).name, split=split, dataset=dataset)


def load_samples(
    root: Path,
    *,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    seed: int = DEFAULT_SEED,
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
    # Lazy for start-up cost: reading a labels.csv should not load torch and the face detectors.
    from fakescope.faces import create_face_detector
    from fakescope.models import get_pretrained_cfg

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
