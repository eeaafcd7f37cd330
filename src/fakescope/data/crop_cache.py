"""Face crops cut once from labelled videos and kept on disk, so training reads images.

Crops are cut exactly as inference cuts them (`sample_frames` → face detector →
`track_faces`/`filter_tracks` → `crop_face` with the model's margin, shift and size), so the
model trains on the crops it will see. One folder per extraction setting keeps caches from
mixing:

    <cache_dir>/<settings key>/manifest.json        settings, and per video: crops or why skipped
    <cache_dir>/<settings key>/labels.csv           file,label,original,split,video
    <cache_dir>/<settings key>/<video stem>/<frame index>.jpg

A video already in the manifest is not decoded again; the manifest is rewritten after every
video, so an interrupted extraction resumes where it stopped.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fakescope.data.samples import LABELS, Sample, VideoSample
from fakescope.errors import FakescopeError, MediaError
from fakescope.faces import FaceDetector, Track, crop_face, filter_tracks, track_faces
from fakescope.faces.types import Box
from fakescope.media import Frame, sample_frames
from fakescope.progress import progress

log = logging.getLogger(__name__)

CACHE_VERSION = 1
JPEG_QUALITY = 95
LABEL_NAMES = {value: name for name, value in LABELS.items()}
DEFAULT_CACHE_ROOT = Path("runs/crop_cache")


@dataclass(frozen=True)
class CropSettings:
    """Everything that changes the pixels of a crop; its hash names the cache folder."""

    frames_per_video: int
    size: int
    margin: float
    shift: float
    detector: str
    version: int = CACHE_VERSION

    def key(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def extract_face_crops(
    videos: Sequence[VideoSample],
    cache_dir: Path,
    *,
    frames_per_video: int,
    size: int,
    margin: float,
    shift: float,
    face_detector: FaceDetector,
) -> list[Sample]:
    """Face crops of `videos` (one track per video), cut on first use and reused after.

    Every crop inherits its video's label, group and split, so one video's crops never
    straddle train and val. Videos without a face or that cannot be decoded are skipped
    (listed in the manifest with the reason).
    """
    if frames_per_video < 1:
        raise FakescopeError(f"frames_per_video must be at least 1, got {frames_per_video}")
    _check_unique_stems(videos)
    settings = CropSettings(frames_per_video, size, float(margin), float(shift), face_detector.name)
    folder = Path(cache_dir) / settings.key()
    manifest = _load_manifest(folder, settings)
    todo = [v for v in videos if not _is_cached(manifest, v)]
    if todo:
        _extract_all(todo, folder, settings, face_detector, manifest)
    samples = _samples(videos, folder, manifest)
    _write_labels_csv(folder, videos, manifest)
    counts = Counter(manifest["videos"][v.path.stem]["status"] for v in videos)
    log.info(
        "%d face crops from %d videos in %s (%d cut now, %d skipped)",
        len(samples),
        counts["done"],
        folder,
        len(todo),
        counts["skipped"],
    )
    return samples


def best_track(tracks: Sequence[Track]) -> Track | None:
    """The main face: the track with the largest summed `area x score` (long, large, confident)."""
    if not tracks:
        return None
    return max(tracks, key=lambda t: sum(d.face.area * d.face.score for d in t.detections))


def _check_unique_stems(videos: Sequence[VideoSample]) -> None:
    stems = Counter(v.path.stem for v in videos)
    clashes = sorted(stem for stem, n in stems.items() if n > 1)
    if clashes:
        raise FakescopeError(
            f"{len(clashes)} video names share the crop folder {clashes[0]!r} (names must differ before the extension)"
        )


def _load_manifest(folder: Path, settings: CropSettings) -> dict[str, Any]:
    path = folder / "manifest.json"
    if not path.is_file():
        return {"settings": asdict(settings), "videos": {}}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise FakescopeError(f"{path}: corrupt crop cache manifest; delete the folder to rebuild it") from err
    if manifest.get("settings") != asdict(settings):
        raise FakescopeError(f"{path}: written with other settings {manifest.get('settings')}; delete the folder to rebuild it")
    return manifest


def _is_cached(manifest: dict[str, Any], video: VideoSample) -> bool:
    """Cached when the manifest has this stem for a file of the same name and size."""
    entry = manifest["videos"].get(video.path.stem)
    return entry is not None and entry.get("file") == video.path.name and entry.get("bytes") == _size(video.path)


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _extract_all(
    videos: Sequence[VideoSample], folder: Path, settings: CropSettings, detector: FaceDetector, manifest: dict[str, Any]
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with progress() as bar:
        task = bar.add_task("face crops", total=len(videos), info="")
        for video in videos:
            bar.update(task, info=video.path.name)
            entry = _extract_video(video, folder, settings, detector)
            manifest["videos"][video.path.stem] = {"file": video.path.name, "bytes": _size(video.path), **entry}
            _write_json(folder / "manifest.json", manifest)
            bar.advance(task)


def _extract_video(video: VideoSample, folder: Path, settings: CropSettings, detector: FaceDetector) -> dict[str, Any]:
    """Manifest entry for one video: `{"status": "done", "crops": [...]}` or skipped with a reason."""
    try:
        frames = sample_frames(video.path, settings.frames_per_video)
    except MediaError as err:
        log.warning("skipped %s: %s", video.path.name, err)
        return {"status": "skipped", "reason": str(err)}
    faces = detector.detect([frame.image for frame in frames])
    track = best_track(filter_tracks(track_faces(faces, [frame.timestamp for frame in frames])))
    if track is None:
        reason = f"no face found in {len(frames)} sampled frames"
        log.info("skipped %s: %s", video.path.name, reason)
        return {"status": "skipped", "reason": reason}
    shutil.rmtree(folder / video.path.stem, ignore_errors=True)  # crops of a replaced file
    (folder / video.path.stem).mkdir()
    crops = [_save_crop(folder, video, frames[d.frame_index], d.face.box, settings) for d in track.detections]
    return {"status": "done", "crops": crops}


def _save_crop(folder: Path, video: VideoSample, frame: Frame, box: Box, settings: CropSettings) -> str:
    crop = crop_face(frame.image, box, margin=settings.margin, shift=settings.shift, size=settings.size)
    name = f"{video.path.stem}/{frame.index}.jpg"
    Image.fromarray(np.ascontiguousarray(crop)).save(folder / name, format="JPEG", quality=JPEG_QUALITY)
    return name


def _samples(videos: Sequence[VideoSample], folder: Path, manifest: dict[str, Any]) -> list[Sample]:
    return [
        Sample(path=folder / name, label=video.label, group=video.group, split=video.split or "")
        for video in videos
        for name in manifest["videos"][video.path.stem].get("crops", [])
    ]


def _write_labels_csv(folder: Path, videos: Sequence[VideoSample], manifest: dict[str, Any]) -> None:
    """labels.csv readable by `read_labels_csv`: `original` is the group, `video` the source file."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "labels.csv.tmp"
    with tmp.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["file", "label", "original", "split", "video"])
        for video in videos:
            for name in manifest["videos"][video.path.stem].get("crops", []):
                writer.writerow([name, LABEL_NAMES[video.label], video.group, video.split or "", video.path.name])
    os.replace(tmp, folder / "labels.csv")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write via a temporary file so an interrupted run never leaves half a manifest."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)
