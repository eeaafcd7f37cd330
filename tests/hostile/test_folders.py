"""`fakescope scan` over folders that fight back: link loops, unreadable folders, broken links.

Each used to stop the scan with a traceback (or recurse until the path was too long) and scan
nothing; now the scan walks every folder once, records what it cannot read as an error Result
with one line, and scans the rest.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fakescope.cli import app
from tests.conftest import refuse_scandir

runner = CliRunner()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """in/a.png, in/sub/b.png and in/deep/c.png: three small pictures."""
    top = tmp_path / "in"
    for name in ("a.png", "sub/b.png", "deep/c.png"):
        (top / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((48, 48, 3), 100 + len(name), np.uint8)).save(top / name)
    return top


def _lines(out: Path) -> dict[str, dict]:
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == len({r["file"] for r in rows}), "a file appears twice"
    return {str(Path(r["file"]).relative_to(out.parent / "in")): r for r in rows}


@pytest.mark.timeout(120)
def test_link_loops_are_walked_once_and_broken_links_recorded(folder: Path) -> None:
    (folder / "self").symlink_to(".")  # ln -s . in/self
    (folder / "sub" / "up").symlink_to("..")
    (folder / "x").symlink_to("y")  # x -> y -> x
    (folder / "y").symlink_to("x")
    (folder / "gone.mp4").symlink_to("nowhere.mp4")
    out = folder.parent / "r.jsonl"
    res = runner.invoke(app, ["scan", str(folder), "-o", str(out), "--image-model", "none", "--audio-model", "none"])
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output
    rows = _lines(out)
    assert sorted(rows) == ["a.png", "deep/c.png", "gone.mp4", "sub/b.png", "x", "y"]
    assert all(rows[name]["status"] != "error" for name in ("a.png", "deep/c.png", "sub/b.png")), "each was analysed"
    assert rows["gone.mp4"]["status"] == "error" and "broken symbolic link" in rows["gone.mp4"]["reason"]
    assert rows["x"]["status"] == "error" and rows["x"]["reason"].endswith("x: cannot read (symbolic link loop)")
    assert "\n" not in rows["x"]["reason"]


@pytest.mark.timeout(120)
def test_an_unreadable_folder_is_an_error_result_and_the_scan_goes_on(folder: Path, monkeypatch) -> None:
    """Root reads a chmod 000 folder anyway (tests run as root): os.scandir refuses one folder instead."""
    refuse_scandir(monkeypatch, folder / "sub")
    out = folder.parent / "r.jsonl"
    args = ["scan", str(folder), "-o", str(out), "--image-model", "none", "--audio-model", "none"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    rows = _lines(out)
    assert sorted(rows) == ["a.png", "deep/c.png", "sub"]
    assert rows["sub"]["status"] == "error"
    assert rows["sub"]["reason"] == f"{folder / 'sub'}: cannot read folder (Permission denied)"
    assert "cannot read folder" in res.output and "error 1" in res.output

    # Resuming: the folder's line is not written again while it stays unreadable...
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert sorted(_lines(out)) == ["a.png", "deep/c.png", "sub"]
    # ...and once it can be read, its files are scanned.
    monkeypatch.undo()
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert sorted(_lines(out)) == ["a.png", "deep/c.png", "sub", "sub/b.png"]


@pytest.mark.timeout(120)
@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 folder anyway")
def test_a_chmod_000_folder_does_not_stop_the_scan(folder: Path) -> None:
    (folder / "sub").chmod(0)
    out = folder.parent / "r.jsonl"
    try:
        res = runner.invoke(app, ["scan", str(folder), "-o", str(out), "--image-model", "none", "--audio-model", "none"])
    finally:
        (folder / "sub").chmod(0o755)
    assert res.exit_code == 0, res.output
    rows = _lines(out)
    assert sorted(rows) == ["a.png", "deep/c.png", "sub"] and rows["sub"]["status"] == "error"


@pytest.mark.timeout(120)
def test_a_named_folder_that_cannot_be_read_is_not_a_usage_error(folder: Path, monkeypatch) -> None:
    """click's readable check turned an unreadable input into exit 2 and nothing written."""
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == folder / "sub" else real_access(p, mode, **kw))
    out = folder.parent / "r.jsonl"
    res = runner.invoke(app, ["scan", str(folder / "sub"), str(folder / "a.png"), "-o", str(out), "--image-model", "none"])
    assert res.exit_code == 0, res.output
    assert sorted(_lines(out)) == ["a.png", "sub/b.png"]
