"""Files that are not files: /dev/zero, a FIFO, a sparse 5 GiB file.

The result cache hashed a file's content before anything checked it: `detect /dev/zero` read
forever, a FIFO blocked in open(), and a 5 GiB file was hashed for half a minute before "too
large". Now a stat decides first (regular file, within the size limit) and nothing reads them.
"""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import fakescope.detect.cache
import fakescope.detect.detector
from fakescope.cli import app
from fakescope.media.limits import DEFAULT_LIMITS

runner = CliRunner()
GIB = 1024**3


@pytest.fixture
def special(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Each hostile input and the reason it must get."""
    fifo = tmp_path / "pipe.mp4"
    os.mkfifo(fifo)
    big = tmp_path / "big.mp4"
    with big.open("wb") as fh:  # sparse: no disk used
        fh.truncate(5 * GIB)
    assert big.stat().st_size > DEFAULT_LIMITS.max_file_bytes
    return {
        "device": (Path("/dev/zero"), "/dev/zero: not a regular file"),
        "fifo": (fifo, f"{fifo}: not a regular file"),
        "big": (big, f"{big}: file is too large (5.0 GiB, limit 4.0 GiB)"),
    }


@pytest.fixture
def no_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hashing anything but a regular file within the size limit is the bug: make it fail loudly."""
    real = fakescope.detect.cache.sha256_file

    def refuse(path, *args, **kwargs):
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode) or st.st_size > DEFAULT_LIMITS.max_file_bytes:
            raise AssertionError(f"hashed {path} before checking it")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(fakescope.detect.cache, "sha256_file", refuse)
    monkeypatch.setattr(fakescope.detect.detector, "sha256_file", refuse)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["device", "fifo", "big"])
def test_the_python_api_refuses_them_at_once(pretrained_detector, special, no_hashing, kind: str) -> None:
    path, reason = special[kind]
    assert pretrained_detector.cache is not None, "the cache lookup is what used to hash first"
    start = time.perf_counter()
    result = pretrained_detector.detect(path)
    assert time.perf_counter() - start < 2.0
    assert (result.status, result.reason) == ("error", reason)


@pytest.mark.timeout(120)
def test_the_cli_gives_one_line_each_and_still_scores_the_rest(special, no_hashing, tmp_path: Path) -> None:
    from PIL import Image

    good = tmp_path / "grey.png"
    Image.new("RGB", (48, 48), (120, 120, 120)).save(good)
    paths = [str(special[k][0]) for k in ("device", "fifo", "big")] + [str(good)]
    res = runner.invoke(app, ["detect", "--json", "--image-model", "none", "--audio-model", "none", *paths])
    assert res.exit_code == 1, res.output
    results = json.loads(res.output)
    assert [(r["status"], r["reason"]) for r in results[:3]] == [("error", special[k][1]) for k in ("device", "fifo", "big")]
    assert results[3]["status"] != "error", "the good file after them was analysed"
    assert all(r["processing_time"] < 2.0 for r in results[:3])


@pytest.mark.timeout(120)
def test_a_fifo_in_a_scanned_folder_is_an_error_result(tmp_path: Path, no_hashing) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    os.mkfifo(folder / "clip.mp4")
    out = tmp_path / "r.jsonl"
    res = runner.invoke(app, ["scan", str(folder), "-o", str(out), "--image-model", "none", "--audio-model", "none"])
    assert res.exit_code == 0, res.output
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert (row["status"], row["reason"]) == ("error", f"{folder / 'clip.mp4'}: not a regular file")
