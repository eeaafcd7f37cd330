"""Turn command-line inputs (files and folders) into the list of files to analyse."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from fakescope.errors import MediaError, MissingFileError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm"})
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a"})
MEDIA_EXTENSIONS = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS | AUDIO_EXTENSIONS


def collect_media_files(inputs: Sequence[str | Path], *, recursive: bool = True) -> list[Path]:
    """Files named explicitly (whatever their extension: the content decides later) plus the
    media files found in named folders, sorted, hidden entries skipped, duplicates dropped.

    Raises `MissingFileError` for a path that does not exist and `MediaError` for a folder
    holding no media file, so a typo never turns into a silent empty scan.
    """
    found: list[Path] = []
    seen: set[Path] = set()
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            media = list(_walk(path, recursive))
            if not media:
                raise MediaError(f"{raw}: no image or video files found")
            new = media
        elif path.exists():
            new = [path]
        else:
            raise MissingFileError(f"{raw}: no such file")
        for item in new:
            key = item.resolve()
            if key not in seen:
                seen.add(key)
                found.append(item)
    log.debug("collected %d media files from %d inputs", len(found), len(inputs))
    return found


def _walk(folder: Path, recursive: bool) -> Iterator[Path]:
    """Media files under `folder` in sorted order, not following hidden files or folders."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as err:
        raise MediaError(f"{folder}: cannot read folder ({err.strerror or err})") from err
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            if recursive:
                yield from _walk(Path(entry.path), recursive)
        elif entry.is_file() and Path(entry.name).suffix.lower() in MEDIA_EXTENSIONS:
            yield Path(entry.path)
