"""Turn command-line inputs (files and folders) into the list of files to analyse.

Folders come from users and other programs, so the walk expects the worst: a link back to a
folder above (`ln -s . d/self`) or two links naming each other, a folder it may not read, a
link to nothing. None of these may stop a scan or send it round in circles: each folder is
walked once (by device and inode), and what cannot be read is handed back as `Unreadable`,
one line each, for the scan to record as an error Result like any failed file.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fakescope.errors import MediaError, MissingFileError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm"})
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a"})
MEDIA_EXTENSIONS = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS | AUDIO_EXTENSIONS


@dataclass(frozen=True)
class Unreadable:
    """An entry the walk found but could not use: `reason` is one line that names `path`."""

    path: Path
    reason: str


@dataclass
class MediaFiles:
    """What `collect_media_files` found: the files to analyse, in order, and what could not be read."""

    files: list[Path] = field(default_factory=list)
    unreadable: list[Unreadable] = field(default_factory=list)


def collect_media_files(inputs: Sequence[str | Path], *, recursive: bool = True) -> MediaFiles:
    """Files named explicitly (whatever their extension or type: the Detector decides later) plus
    the media files found in named folders, sorted, hidden entries skipped, duplicates dropped.

    Unreadable folders, broken links and link loops inside the inputs become `unreadable`
    entries and the walk goes on. Raises `MissingFileError` for an input that does not exist
    and `MediaError` for a folder holding no media file and nothing unreadable, so a typo
    never turns into a silent empty scan.
    """
    found = MediaFiles()
    seen: set[str] = set()
    visited: set[tuple[int, int]] = set()
    for raw in inputs:
        path = Path(raw)
        problems: list[Unreadable] = []
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError) as err:
            if not path.is_symlink():
                raise MissingFileError(f"{raw}: no such file") from err
            new, problems = [], [Unreadable(path, f"{raw}: broken symbolic link (points to {_target(path)})")]
        except OSError as err:
            new, problems = [], [Unreadable(path, f"{raw}: cannot read ({_why(err)})")]
        else:
            if stat.S_ISDIR(st.st_mode):
                new = list(_walk(path, st, recursive, visited, problems))
                if not new and not problems:
                    raise MediaError(f"{raw}: no image or video files found")
            else:
                new = [path]
        for item in new:
            key = os.path.realpath(item)
            if key not in seen:
                seen.add(key)
                found.files.append(item)
        for problem in problems:
            if str(problem.path) not in seen:
                seen.add(str(problem.path))
                found.unreadable.append(problem)
    log.debug("collected %d media files (%d unreadable) from %d inputs", len(found.files), len(found.unreadable), len(inputs))
    return found


def _walk(
    top: Path, top_stat: os.stat_result, recursive: bool, visited: set[tuple[int, int]], problems: list[Unreadable]
) -> Iterator[Path]:
    """Media files under `top` in sorted order, depth first, without hidden entries.

    A loop of iterators rather than recursion, so a deep tree cannot exhaust Python's stack;
    `visited` holds the folders already walked, so a link back to one is passed over."""
    stack = [iter(_list(top, top_stat, visited, problems))]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        path = Path(entry.path)
        try:
            st = entry.stat()  # follows links: the folder or file a link names is what counts
        except FileNotFoundError:
            if entry.is_symlink() and _might_matter(entry.name):
                problems.append(Unreadable(path, f"{path}: broken symbolic link (points to {_target(path)})"))
            continue
        except OSError as err:  # a link loop (ELOOP), a folder we may not search (EACCES)...
            if _might_matter(entry.name):
                problems.append(Unreadable(path, f"{path}: cannot read ({_why(err)})"))
            continue
        if stat.S_ISDIR(st.st_mode):
            if recursive:
                stack.append(iter(_list(path, st, visited, problems)))
        elif path.suffix.lower() in MEDIA_EXTENSIONS:
            # Not only regular files: a FIFO or device named like media gets the Detector's clear error.
            yield path


def _list(folder: Path, st: os.stat_result, visited: set[tuple[int, int]], problems: list[Unreadable]) -> list[os.DirEntry[str]]:
    """The folder's visible entries sorted by name; none for a folder already walked or unreadable."""
    key = (st.st_dev, st.st_ino)
    if key in visited:
        log.debug("%s: already walked (a link back to it), passed over", folder)
        return []
    visited.add(key)
    try:
        with os.scandir(folder) as entries:
            return sorted((e for e in entries if not e.name.startswith(".")), key=lambda e: e.name)
    except OSError as err:
        problems.append(Unreadable(folder, f"{folder}: cannot read folder ({_why(err)})"))
        return []


def _might_matter(name: str) -> bool:
    """Whether a broken entry could have been media or a folder: other suffixes are never scanned anyway."""
    suffix = Path(name).suffix.lower()
    return not suffix or suffix in MEDIA_EXTENSIONS


def _target(path: Path) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return "?"


def _why(err: OSError) -> str:
    if err.errno == errno.ELOOP:
        return "symbolic link loop"
    return err.strerror or str(err)
