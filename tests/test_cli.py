"""The CLI through typer's CliRunner, with the shipped default model."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fakescope.cli import app
from fakescope.constants import DEFAULT_AUDIO_MODEL, DEFAULT_IMAGE_MODEL
from tests.conftest import AS_NOBODY, EXAMPLES, shared, skip_unless_nobody_imports

runner = CliRunner()


@pytest.fixture(scope="module")
def face_jpg(tmp_path_factory):
    """A real DFDC face crop (already tight: exercises the whole-image fallback if no face is found)."""
    path = tmp_path_factory.mktemp("img") / "face.jpg"
    shutil.copy(shared("dfdc_faces", "real", sorted(p.name for p in shared("dfdc_faces", "real").iterdir())[0]), path)
    return path


def test_detect_image_prints_a_verdict_table(face_jpg):
    res = runner.invoke(app, ["detect", str(face_jpg)])
    assert res.exit_code == 0, res.output
    assert "face.jpg" in res.output and "image" in res.output
    assert any(v in res.output for v in ("authentic", "suspicious", "manipulated"))
    assert DEFAULT_IMAGE_MODEL in res.output, "a picture lists both detectors' scores"
    alone = runner.invoke(app, ["detect", "--image-model", "none", str(face_jpg)])
    assert alone.exit_code == 0 and "aigen" not in alone.output


def test_detect_json_is_the_result_contract(face_jpg):
    res = runner.invoke(app, ["detect", "--json", str(face_jpg)])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["status"] == "ok" and data["media_type"] == "image"
    assert 0.0 <= data["score"] <= 1.0
    assert data["probabilities"]["fake"] == pytest.approx(data["score"])
    assert data["label"] in ("REAL", "FAKE") and data["verdict"] in ("authentic", "suspicious", "manipulated")
    assert len(data["sha256"]) == 64 and data["faces"] and data["detectors"][0]["name"].startswith("faceswap-")


def test_detect_video_json_has_tracks_and_timeline():
    res = runner.invoke(app, ["detect", "--json", "--frames", "8", str(shared("videos", "004.mp4"))])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["media_type"] == "video" and data["status"] == "ok" and data["frames_sampled"] == 8
    frames = data["faces"][0]["frames"]
    assert len(frames) >= 4 and all(len(box) == 4 for _, _, box in frames)
    assert data["segments"] and all(s["end"] > s["start"] for s in data["segments"])
    assert set(data["timings"]) >= {"decode", "faces", "model", "fusion"}


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.mp4", b"", "empty"),
        ("notes.mp4", b"this is a text file, not a video\n" * 10, "unsupported"),
        ("truncated.mp4", None, "corrupt"),
    ],
)
def test_detect_bad_input_is_one_line_and_nonzero(tmp_path, name, content, message):
    path = tmp_path / name
    if content is None:
        data = shared("videos", "519.mp4").read_bytes()
        content = data[: len(data) // 10]
    path.write_bytes(content)
    res = runner.invoke(app, ["detect", str(path)])
    assert res.exit_code == 1
    assert message in res.output.lower()
    assert "Traceback" not in res.output


def test_detect_missing_file(tmp_path):
    res = runner.invoke(app, ["detect", str(tmp_path / "nope.jpg")])
    assert res.exit_code == 1 and "no such file" in res.output.lower()


def test_an_unreadable_file_is_an_error_result_among_the_others(face_jpg, tmp_path, monkeypatch):
    """Every file gets its Result and the exit status is 1, as for any bad file; click's readable check
    made it a usage error (exit 2) with no Result at all. Root reads anything (tests run as root), so
    os.access and Path.open refuse the one file here; the next test does it for real as another user."""
    locked = tmp_path / "locked.jpg"
    shutil.copy(face_jpg, locked)
    real_access, real_open = os.access, Path.open
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == locked else real_access(p, mode, **kw))

    def open_(self, *args, **kwargs):
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_)
    res = runner.invoke(app, ["detect", "--json", "--image-model", "none", str(face_jpg), str(locked), str(face_jpg)])
    assert res.exit_code == 1, res.output
    results = json.loads(res.output)
    assert [r["status"] for r in results] == ["ok", "error", "ok"]
    assert results[1]["reason"] == f"{locked}: cannot read file (Permission denied)"


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root and setpriv to run the CLI as another user"
)
def test_an_unreadable_file_for_real_as_another_user(face_jpg):
    with tempfile.TemporaryDirectory() as top:
        folder = Path(top)
        folder.chmod(0o755)
        readable, locked = folder / "a.jpg", folder / "locked.jpg"
        shutil.copy(face_jpg, readable)
        shutil.copy(face_jpg, locked)
        readable.chmod(0o644)
        locked.chmod(0)
        env = {**os.environ, "HOME": top}
        skip_unless_nobody_imports("fakescope.cli", env=env, cwd=top)
        fakescope = str(Path(sys.executable).with_name("fakescope"))
        cli = [fakescope, "detect", "--json", "--image-model", "none", "--audio-model", "none"]
        run = subprocess.run(
            [*AS_NOBODY, *cli, str(readable), str(locked), str(readable)],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
            cwd=top,
            check=False,
        )
    assert run.returncode == 1, run.stderr
    results = json.loads(run.stdout)
    assert [r["status"] for r in results] == ["ok", "error", "ok"]
    assert results[1]["reason"] == f"{locked}: cannot read file (Permission denied)"


def test_detect_huge_image_is_refused(tmp_path):
    # 11000 x 11000 = 121 Mpx (limit 100 Mpx) in a PNG of a few KB: refused before decoding.
    path = tmp_path / "huge.png"
    Image.new("1", (11000, 11000)).save(path, optimize=True)
    res = runner.invoke(app, ["detect", str(path)])
    assert res.exit_code == 1 and "too large" in res.output.lower()


def test_unknown_model_is_a_clear_error(face_jpg):
    res = runner.invoke(app, ["detect", "--model", "nope", str(face_jpg)])
    assert res.exit_code == 2 and "unknown model" in res.output


def test_detect_and_scan_offer_every_detector_option():
    """Both take every engine option from cli.options.with_engine_options: none may be missing."""
    import typer.main

    from fakescope.detect.options import DetectorOptions

    wanted = {f.name for f in fields(DetectorOptions)} - {"device"}
    group = typer.main.get_command(app)
    for name in ("detect", "scan"):
        assert wanted <= {p.name for p in group.commands[name].params}, name


def test_models_lists_sha_and_metrics():
    res = runner.invoke(app, ["models", "--json"])
    assert res.exit_code == 0
    rows = json.loads(res.output)
    default = next(r for r in rows if r["name"] == "faceswap-effnet-lite0.dfdc")
    assert default["installed"] and len(default["sha256"]) == 64
    assert default["input_size"] == [3, 224, 224] and default["auc"] >= 0.8
    table = runner.invoke(app, ["models"], env={"COLUMNS": "200"})
    assert "faceswap-effnet-lite0.dfdc" in table.output and default["sha256"][:12] in table.output


def test_scan_is_resumable_and_writes_a_submission(tmp_path, face_jpg):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(face_jpg, folder / "a.jpg")
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(folder / "grey.png")
    (folder / "broken.mp4").write_bytes(b"not a video")
    (folder / "readme.txt").write_text("ignored: not a media suffix")
    out, sub = tmp_path / "results.jsonl", tmp_path / "submission.csv"

    res = runner.invoke(app, ["scan", str(folder), "--output", str(out), "--submission", str(sub)])
    assert res.exit_code == 0, res.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 3
    by_name = {line["file"].rsplit("/", 1)[-1]: line for line in lines}
    assert by_name["broken.mp4"]["status"] == "error" and by_name["broken.mp4"]["reason"]
    assert by_name["a.jpg"]["status"] == "ok"
    rows = list(csv.DictReader(sub.open()))
    assert [r["filename"] for r in rows] == ["a.jpg", "broken.mp4", "grey.png"]
    assert float(rows[1]["label"]) == 0.5
    assert float(rows[0]["label"]) == pytest.approx(by_name["a.jpg"]["score"], abs=1e-6)

    shutil.copy(face_jpg, folder / "b.jpg")
    res = runner.invoke(app, ["scan", str(folder), "--output", str(out)])
    assert res.exit_code == 0 and "3 already" in res.output
    assert len(out.read_text().splitlines()) == 4


def test_scan_survives_a_torn_last_line(tmp_path, face_jpg):
    out = tmp_path / "r.jsonl"
    out.write_text('{"file": "half-written')
    res = runner.invoke(app, ["scan", str(face_jpg), "--output", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text().splitlines()[-1])["status"] == "ok"


def test_scan_of_a_folder_without_media_fails_clearly(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    res = runner.invoke(app, ["scan", str(tmp_path), "--output", str(tmp_path / "r.jsonl")])
    assert res.exit_code == 1 and "no image or video files" in res.output


def test_scan_with_worker_processes_matches_in_process(tmp_path, face_jpg):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        shutil.copy(face_jpg, folder / name)
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    assert runner.invoke(app, ["scan", str(folder), "-o", str(one)]).exit_code == 0
    res = runner.invoke(app, ["scan", str(folder), "-o", str(two), "--workers", "2"])
    assert res.exit_code == 0, res.output

    def scores(path):
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        return dict(sorted((row["file"], row["score"]) for row in rows))

    # a worker's thread count may change the last float digits of a forward, nothing more
    assert scores(one) == pytest.approx(scores(two), abs=1e-4) and len(scores(two)) == 3


def test_train_bad_config_is_one_line(tmp_path):
    res = runner.invoke(app, ["train", "configs/faceswap-effnet-lite0.yaml", "optim.lrr=1"])
    assert res.exit_code == 2
    assert "optim.lrr" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["train", str(tmp_path / "none.yaml")])
    assert res.exit_code == 2 and "config file not found" in res.output


def test_train_ensemble_refuses_a_non_stack():
    res = runner.invoke(app, ["train-ensemble", "faceswap-effnet-lite0.dfdc"])
    assert res.exit_code == 2 and "not a stacked ensemble" in res.output


def test_detect_speech_and_a_video_with_sound(tmp_path):
    real, fake = EXAMPLES / "speech_real_fsdd_theo.wav", EXAMPLES / "speech_fake_world_theo.wav"
    res = runner.invoke(app, ["detect", "--json", str(real), str(fake)])
    assert res.exit_code == 0, res.output
    results = json.loads(res.output)
    assert [r["media_type"] for r in results] == ["audio", "audio"] and all(r["verdict"] for r in results)
    assert results[1]["score"] > results[0]["score"], "the vocoded copy scores above the speaker"
    assert results[0]["modalities"] == [{"modality": "audio", "score": results[0]["score"], "weight": 1.0, "skipped": None}]
    clip = shared("videos", "brtujopkby.mp4")
    table = runner.invoke(app, ["detect", "--frames", "4", "--audio-weight", "0.3", str(clip)], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and DEFAULT_AUDIO_MODEL in table.output and "weight" in table.output
    faces_only = json.loads(runner.invoke(app, ["detect", "--json", "--frames", "4", "--audio-model", "none", str(clip)]).output)
    assert [m["modality"] for m in faces_only["modalities"]] == ["video"]
    bad = runner.invoke(app, ["detect", "--audio-weight", "2", str(real)])
    assert bad.exit_code == 2


@pytest.fixture
def keep_torch_threads():
    """`--threads` sets torch's thread count for the process: give the other tests theirs back."""
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_export_then_detect_on_each_backend(tmp_path, face_jpg, keep_torch_threads):
    out = tmp_path / "onnx"
    res = runner.invoke(
        app,
        [
            "export",
            "faceswap-effnet-lite0.dfdc",
            "--quantize",
            "int8-static",
            "--calib-crops",
            "64",
            "--no-evaluate",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    card = json.loads((out / "faceswap-effnet-lite0.dfdc.int8-static.json").read_text())
    assert card["variant"] == "int8-static" and card["calibration"]["crops"] == 64 and len(card["sha256"]) == 64
    scores = {}
    for backend, extra in [("onnx", ["--onnx-dir", str(out)]), ("torch", [])]:
        res = runner.invoke(
            app,
            [
                "detect",
                str(face_jpg),
                "--model",
                "faceswap-effnet-lite0.dfdc",
                "--json",
                "--backend",
                backend,
                "--threads",
                "1",
                "--image-model",
                "none",
                "--cache-size",
                "0",
                *extra,
            ],
        )
        assert res.exit_code == 0, res.output
        result = json.loads(res.output)
        scores[backend] = result["score"]
        assert (
            result["model_versions"]["faceswap-effnet-lite0.dfdc"]
            == (card["sha256"] if backend == "onnx" else card["weights_sha256"])[:12]
        )
    assert scores["onnx"] == pytest.approx(scores["torch"], abs=0.1)


def test_export_and_backend_mistakes_are_one_line(tmp_path, face_jpg):
    res = runner.invoke(app, ["export", "audio-bigru-attn.speech", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "cannot be exported to ONNX" in res.output and "Traceback" not in res.output
    res = runner.invoke(app, ["export", "faceswap-effnet-lite0.dfdc", "--quantize", "int4", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "unknown ONNX variant 'int4'" in res.output
    res = runner.invoke(app, ["detect", str(face_jpg), "--backend", "onnx", "--onnx-dir", str(tmp_path)])
    assert res.exit_code == 2 and "no ONNX export" in res.output
    res = runner.invoke(app, ["detect", str(face_jpg), "--backend", "tensorrt"])
    assert res.exit_code == 2 and "unknown backend 'tensorrt'" in res.output


def test_bench_cache_and_image_in_quick_mode_print_their_tables():
    res = runner.invoke(app, ["bench", "cache", "--quick", "--json"])
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.output)["cache"]
    assert row["all_cached"] and row["hit"] < row["first"] and row["cache"]["hits"] == 5
    res = runner.invoke(app, ["bench", "image", "--quick"])
    assert res.exit_code == 0, res.output
    assert "real_ffpp_866.jpg" in res.output and "peak" in res.output
    res = runner.invoke(app, ["bench", "gpu"])
    assert res.exit_code == 2 and "unknown benchmark 'gpu'" in res.output
