"""The Python API gives the same Result the CLI prints."""

import json

from typer.testing import CliRunner

from fakescope import Detector, Result
from fakescope.cli import app
from tests.conftest import shared

VOLATILE = {"processing_time", "timings", "timestamp"}


def test_from_pretrained_detect_matches_cli_json(pretrained_detector):
    clip = shared("videos", "004.mp4")
    api = Detector.from_pretrained(num_frames=8).detect(clip)
    assert isinstance(api, Result) and api.status == "ok"
    cli = json.loads(CliRunner().invoke(app, ["detect", "--json", "--frames", "8", str(clip)]).output)
    a = {k: v for k, v in json.loads(api.model_dump_json()).items() if k not in VOLATILE}
    b = {k: v for k, v in cli.items() if k not in VOLATILE}
    assert a == b


def test_errors_come_back_as_results_not_exceptions(pretrained_detector, tmp_path):
    r = pretrained_detector.detect(tmp_path / "missing.mp4")
    assert r.status == "error" and "no such file" in r.reason and r.score is None


def test_an_unexpected_failure_comes_back_as_an_internal_error_result(random_detector, monkeypatch, tmp_path):
    def broken(path):
        raise RuntimeError("boom")

    monkeypatch.setattr("fakescope.detect.detector.probe", broken)
    r = random_detector.detect(tmp_path / "any.mp4")
    assert r.status == "error" and r.reason == "internal error: RuntimeError: boom" and r.file == str(tmp_path / "any.mp4")
