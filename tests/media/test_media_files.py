from __future__ import annotations

from pathlib import Path

import pytest

from fakescope.errors import MediaError, MissingFileError
from fakescope.media import AUDIO_EXTENSIONS, IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, collect_media_files


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for name in [
        "b.jpg",
        "a.MP4",
        "notes.txt",
        ".hidden.jpg",
        ".cache/c.png",
        "sub/d.png",
        "sub/deeper/e.wav",
        "sub/readme.md",
        "zz.webm",
    ]:
        path = tmp_path / "data" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    return tmp_path / "data"


def test_extension_sets() -> None:
    assert {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"} == IMAGE_EXTENSIONS
    assert {".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm"} == VIDEO_EXTENSIONS
    assert {".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a"} == AUDIO_EXTENSIONS


def test_directory_is_walked_sorted_without_hidden_entries(tree: Path) -> None:
    found = collect_media_files([tree])
    assert [p.relative_to(tree).as_posix() for p in found] == [
        "a.MP4",
        "b.jpg",
        "sub/d.png",
        "sub/deeper/e.wav",
        "zz.webm",
    ]


def test_not_recursive(tree: Path) -> None:
    found = collect_media_files([tree], recursive=False)
    assert [p.name for p in found] == ["a.MP4", "b.jpg", "zz.webm"]


def test_explicit_files_are_kept_whatever_their_extension(tree: Path) -> None:
    found = collect_media_files([tree / "notes.txt", tree / ".hidden.jpg", tree / "sub"])
    assert [p.relative_to(tree).as_posix() for p in found] == [
        "notes.txt",
        ".hidden.jpg",
        "sub/d.png",
        "sub/deeper/e.wav",
    ]


def test_duplicates_are_dropped(tree: Path) -> None:
    found = collect_media_files([tree / "b.jpg", tree, str(tree / "b.jpg")])
    assert len(found) == 5
    assert found[0] == tree / "b.jpg"


def test_directory_without_media(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "readme.md").write_text("hi")
    with pytest.raises(MediaError) as err:
        collect_media_files([tmp_path / "docs"])
    assert str(err.value) == f"{tmp_path / 'docs'}: no image or video files found"


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match=r"nope\.mp4: no such file"):
        collect_media_files([tmp_path / "nope.mp4"])
