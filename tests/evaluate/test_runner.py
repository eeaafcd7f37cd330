"""`fakescope eval` end to end: image folders (with perturbations) and DFDC-format video folders."""

import csv
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fakescope.cli import app
from fakescope.errors import FakescopeError
from fakescope.evaluate.perturb import parse_perturbation
from fakescope.evaluate.runner import evaluate_dataset
from tests.conftest import EXAMPLES, shared

runner = CliRunner()


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    """Six real and six fake DFDC crops in the real/ + fake/ layout."""
    root = tmp_path_factory.mktemp("faces")
    for label in ("real", "fake"):
        (root / label).mkdir()
        for src in sorted(shared("dfdc_faces", label).glob("*.jpg"))[:6]:
            shutil.copy(src, root / label / src.name)
    return root


@pytest.fixture(scope="module")
def video_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("videos")
    shutil.copy(EXAMPLES / "real_ffpp_866.mp4", root / "a.mp4")
    shutil.copy(EXAMPLES / "fake_ffpp_deepfakes_866_878.mp4", root / "b.mp4")
    (root / "metadata.json").write_text(json.dumps({"a.mp4": {"label": "REAL"}, "b.mp4": {"label": "FAKE", "original": "a.mp4"}}))
    return root


def test_crops_report_with_perturbations(image_folder, tmp_path):
    summary, html = evaluate_dataset(
        image_folder,
        "faceswap-effnet-lite0.dfdc",
        out_dir=tmp_path / "r",
        split="all",
        perturbations=["jpeg70", "resize0.5"],
        crops=True,
    )
    crops = "crops (model input only)"
    assert set(summary["sections"]) == {crops, f"{crops}, jpeg70", f"{crops}, resize0.5"}
    metrics = summary["sections"][crops]["metrics"]
    assert metrics["n"] == 12 and 0 <= metrics["auc"] <= 1 and "eer" in metrics
    assert summary["sections"][f"{crops}, jpeg70"]["metrics"]["logloss"] != metrics["logloss"]
    page = html.read_text()
    assert "data:image/png;base64" in page and "jpeg70" in page


def test_video_folder_video_and_frame_level_with_submission(video_folder, tmp_path):
    res = runner.invoke(
        app,
        [
            "eval",
            str(video_folder),
            "--split",
            "all",
            "--frames",
            "4",
            "--out",
            str(tmp_path / "r"),
            "--submission",
            str(tmp_path / "sub.csv"),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["sections"]["video level"]["metrics"]["n"] == 2
    assert summary["sections"]["frame level"]["metrics"]["n"] >= 4
    rows = list(csv.DictReader((tmp_path / "sub.csv").open()))
    assert [r["filename"] for r in rows] == ["a.mp4", "b.mp4"] and all(0 <= float(r["label"]) <= 1 for r in rows)


def test_eval_table_output(image_folder, tmp_path):
    res = runner.invoke(app, ["eval", str(image_folder), "--split", "all", "--out", str(tmp_path / "r")], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "picture level" in res.output and "report.html" in res.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--submission", "x.csv"], "needs a DFDC-format video folder"),
        (["--perturb", "sepia3"], "unknown perturbation"),
        (["--split", "test"], "--split must be"),
    ],
)
def test_eval_errors_are_one_line(image_folder, tmp_path, args, message):
    res = runner.invoke(app, ["eval", str(image_folder), "--out", str(tmp_path / "r"), *args])
    assert res.exit_code == 2
    assert message in res.output


def test_eval_missing_folder(tmp_path):
    with pytest.raises(FakescopeError, match="not a folder"):
        evaluate_dataset(tmp_path / "nope", "faceswap-effnet-lite0.dfdc", out_dir=tmp_path / "r")


def test_perturbations_change_pixels_as_named():
    from PIL import Image

    image = Image.new("RGB", (64, 48), (120, 30, 200))
    assert parse_perturbation("resize0.5")(image).size == (32, 24)
    assert parse_perturbation("jpeg70")(image).size == (64, 48)
    with pytest.raises(FakescopeError, match="quality"):
        parse_perturbation("jpeg0")


@pytest.fixture(scope="module")
def speech_folder(tmp_path_factory) -> Path:
    from tests.train.test_audio_training import write_corpus

    return write_corpus(tmp_path_factory.mktemp("speech"), n_per_class=6)


def test_audio_folder_clip_level_per_family_and_codecs(speech_folder, tmp_path):
    summary, html = evaluate_dataset(
        speech_folder, "audio-bigru-attn.speech", out_dir=tmp_path / "r", split="all", perturbations=["mp3_32k", "narrowband"]
    )
    sections = summary["sections"]
    assert {
        "clip level",
        "clip level, mp3_32k",
        "clip level, narrowband",
        "clip level, family=buzz",
        "clip level, family=hum",
    } <= set(sections)
    assert sections["clip level"]["metrics"]["n"] == 12 and "eer" in sections["clip level"]["metrics"]
    assert sections["clip level, family=buzz"]["metrics"]["n"] == 9, "its 3 fakes against all 6 reals"
    assert sections["clip level, mp3_32k"]["metrics"]["logloss"] != sections["clip level"]["metrics"]["logloss"]
    assert "family=buzz" in html.read_text()


def test_audio_eval_refuses_unknown_codecs_and_video_folders(speech_folder, video_folder, tmp_path):
    with pytest.raises(FakescopeError, match="unknown audio perturbation 'jpeg70'"):
        evaluate_dataset(speech_folder, "audio-bigru-attn.speech", out_dir=tmp_path / "r", perturbations=["jpeg70"])
    with pytest.raises(FakescopeError, match="is an audio model"):
        evaluate_dataset(video_folder, "audio-bigru-attn.speech", out_dir=tmp_path / "r")


def test_a_model_trained_on_every_group_says_why_it_has_no_val_videos(video_folder, tmp_path):
    """The temporal model's card records no val split (its figures are leave-one-group-out): the error says so."""
    res = runner.invoke(
        app, ["eval", str(video_folder), "--model", "temporal-effnet-lite0-bilstm.videos", "--out", str(tmp_path)]
    )
    assert res.exit_code != 0
    assert "leave-one-group-out" in res.output and "--split all" in res.output
