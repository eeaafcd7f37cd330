"""Stacking the shipped face-swap detectors: fitted on calib, reported on val, exported with a card."""

import json

import pytest

from fakescope.errors import FakescopeError
from fakescope.models import sha256_file
from fakescope.train.ensemble import shared_split_settings, train_ensemble
from tests.conftest import shared


def test_train_ensemble_fits_exports_and_reports_members(tmp_path):
    card = train_ensemble("stack-faceswap.dfdc", shared("dfdc_faces"), out=tmp_path, limit=40, threads=1)
    weights = tmp_path / card["file"]
    assert sha256_file(weights) == card["sha256"]
    written = json.loads(weights.with_suffix(".json").read_text())
    assert written["extra"]["members"] == ["faceswap-effnet-lite0.dfdc", "faceswap-effnet-lite0.dfdc_cutmix"]
    assert len(written["extra"]["coef"]) == 2
    assert written["thresholds"]["real_below"] <= written["thresholds"]["fake_at_or_above"]
    assert set(written["extra"]["member_metrics"]) == set(written["extra"]["members"])
    assert 0.5 < written["metrics"]["dfdc_faces/val"]["auc"] <= 1


def test_members_must_share_the_split():
    with pytest.raises(FakescopeError, match="no training config|different splits"):
        shared_split_settings(["faceswap-effnet-lite0.dfdc", "aigen-effnet-lite0.ffhq"])


def test_speech_stack_fits_on_audio_clips(tmp_path):
    from tests.train.test_audio_training import write_corpus

    corpus = write_corpus(tmp_path / "speech")
    card = train_ensemble("stack-speech.speech", corpus, out=tmp_path / "out", threads=1)
    written = json.loads((tmp_path / "out" / card["file"]).with_suffix(".json").read_text())
    assert written["extra"]["members"] == ["audio-spec-cnn.speech", "audio-whisper-probe.speech"]
    assert written["input_kind"] == "audio" and len(written["extra"]["coef"]) == 2
    assert f"{corpus.name}/val" in written["metrics"]
