from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from fakescope.errors import MediaError, MissingFileError
from fakescope.media import AUDIO_EXTENSIONS, IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, collect_media_files
from tests.conftest import AS_NOBODY, refuse_scandir, skip_unless_nobody_imports


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
    found = collect_media_files([tree]).files
    assert [p.relative_to(tree).as_posix() for p in found] == [
        "a.MP4",
        "b.jpg",
        "sub/d.png",
        "sub/deeper/e.wav",
        "zz.webm",
    ]


def test_not_recursive(tree: Path) -> None:
    found = collect_media_files([tree], recursive=False).files
    assert [p.name for p in found] == ["a.MP4", "b.jpg", "zz.webm"]


def test_explicit_files_are_kept_whatever_their_extension(tree: Path) -> None:
    found = collect_media_files([tree / "notes.txt", tree / ".hidden.jpg", tree / "sub"]).files
    assert [p.relative_to(tree).as_posix() for p in found] == [
        "notes.txt",
        ".hidden.jpg",
        "sub/d.png",
        "sub/deeper/e.wav",
    ]


def test_duplicates_are_dropped(tree: Path) -> None:
    found = collect_media_files([tree / "b.jpg", tree, str(tree / "b.jpg")]).files
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


def _names(found, tree: Path) -> list[str]:
    return [p.relative_to(tree).as_posix() for p in found.files]


def test_a_link_back_to_a_folder_above_is_walked_once(tree: Path) -> None:
    """`ln -s . data/self` and `ln -s .. data/sub/up` used to recurse until the path was too long."""
    (tree / "self").symlink_to(".")
    (tree / "sub" / "up").symlink_to("..")
    found = collect_media_files([tree])
    assert _names(found, tree) == ["a.MP4", "b.jpg", "sub/d.png", "sub/deeper/e.wav", "zz.webm"]
    assert found.unreadable == []


def test_two_folders_linking_to_each_other_are_each_walked_once(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / f"{name}.jpg").write_bytes(b"x")
    (tmp_path / "a" / "to_b").symlink_to("../b")
    (tmp_path / "b" / "to_a").symlink_to("../a")
    found = collect_media_files([tmp_path])
    assert _names(found, tmp_path) == ["a/a.jpg", "a/to_b/b.jpg"]
    assert found.unreadable == []


def test_links_naming_each_other_and_broken_links_are_unreadable_entries(tree: Path) -> None:
    (tree / "x").symlink_to("y")
    (tree / "y").symlink_to("x")
    (tree / "gone.mp4").symlink_to("nowhere.mp4")
    (tree / "gone.txt").symlink_to("nowhere.txt")  # never scanned even when intact: not worth a line
    found = collect_media_files([tree])
    assert _names(found, tree) == ["a.MP4", "b.jpg", "sub/d.png", "sub/deeper/e.wav", "zz.webm"]
    assert [(u.path.name, u.reason) for u in found.unreadable] == [
        ("gone.mp4", f"{tree / 'gone.mp4'}: broken symbolic link (points to nowhere.mp4)"),
        ("x", f"{tree / 'x'}: cannot read (symbolic link loop)"),
        ("y", f"{tree / 'y'}: cannot read (symbolic link loop)"),
    ]


def test_an_unreadable_folder_is_recorded_and_the_walk_goes_on(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    refuse_scandir(monkeypatch, tree / "sub")
    found = collect_media_files([tree])
    assert _names(found, tree) == ["a.MP4", "b.jpg", "zz.webm"]
    assert [(u.path, u.reason) for u in found.unreadable] == [
        (tree / "sub", f"{tree / 'sub'}: cannot read folder (Permission denied)")
    ]
    # A named folder that cannot be read is an unreadable entry too, not "no media files".
    only = collect_media_files([tree / "sub"])
    assert only.files == [] and [u.path for u in only.unreadable] == [tree / "sub"]


def test_special_files_named_like_media_are_handed_on(tmp_path: Path) -> None:
    """A FIFO called clip.mp4 goes to the Detector, which refuses it without opening it."""
    os.mkfifo(tmp_path / "clip.mp4")
    assert collect_media_files([tmp_path]).files == [tmp_path / "clip.mp4"]


def test_a_deep_tree_does_not_exhaust_the_stack(tmp_path: Path) -> None:
    """A folder per level would need a frame per level: the walk keeps its own stack instead."""
    deep = tmp_path
    for _ in range(300):
        deep = deep / "d"
        deep.mkdir()
    (deep / "x.jpg").write_bytes(b"x")
    limit, here = sys.getrecursionlimit(), _stack_depth()
    sys.setrecursionlimit(here + 100)  # fewer frames than levels
    try:
        found = collect_media_files([tmp_path])
    finally:
        sys.setrecursionlimit(limit)
    assert found.files == [deep / "x.jpg"]


def _stack_depth() -> int:
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    return depth


def test_a_broken_link_named_as_input_is_unreadable(tmp_path: Path) -> None:
    (tmp_path / "gone.jpg").symlink_to("nowhere.jpg")
    found = collect_media_files([tmp_path / "gone.jpg"])
    assert found.files == [] and "broken symbolic link" in found.unreadable[0].reason


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 folder anyway")
def test_a_chmod_000_folder_is_recorded(tree: Path) -> None:
    (tree / "sub").chmod(0)
    try:
        found = collect_media_files([tree])
    finally:
        (tree / "sub").chmod(0o755)
    assert _names(found, tree) == ["a.MP4", "b.jpg", "zz.webm"]
    assert [u.path for u in found.unreadable] == [tree / "sub"]


def _can_drop_to_nobody() -> bool:
    return sys.platform.startswith("linux") and os.geteuid() == 0 and os.path.exists("/usr/bin/setpriv")


@pytest.mark.skipif(not _can_drop_to_nobody(), reason="needs root and setpriv to walk as another user")
def test_a_chmod_000_folder_is_recorded_when_walked_as_another_user() -> None:
    """The real thing where tests run as root: the walk runs as `nobody`, who may not read `sub`
    (in a folder of its own: pytest's tmp_path is closed to other users)."""
    with tempfile.TemporaryDirectory() as top:
        tree = Path(top)
        tree.chmod(0o755)
        for name in ("a.jpg", "b.mp4", "sub/c.png", "z/d.wav"):
            (tree / name).parent.mkdir(exist_ok=True)
            (tree / name).write_bytes(b"x")
        _walk_as_nobody(tree)


def _walk_as_nobody(tree: Path) -> None:
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": src}
    skip_unless_nobody_imports("fakescope.media.files", env=env, cwd=str(tree))
    (tree / "sub").chmod(0)
    code = (
        "import sys; from fakescope.media.files import collect_media_files; "
        "found = collect_media_files([sys.argv[1]]); "
        "print(len(found.files)); print(*[u.reason for u in found.unreadable], sep='\\n')"
    )
    try:
        run = subprocess.run(
            [*AS_NOBODY, sys.executable, "-c", code, str(tree)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
    finally:
        (tree / "sub").chmod(0o755)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["3", f"{tree / 'sub'}: cannot read folder (Permission denied)"]
