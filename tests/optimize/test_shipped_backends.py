"""The shipped ONNX exports: what `Detector.from_pretrained` picks by default, and their cards' evidence."""

from __future__ import annotations

import json

import pytest
import torch

from fakescope.detect import Detector
from fakescope.errors import ModelError
from fakescope.models import DEFAULT_AUDIO_MODEL, DEFAULT_MODEL, get_pretrained_cfg
from fakescope.models.onnx import OnnxModel, choose_backend, default_onnx_dir, find_onnx
from fakescope.models.onnx_artifact import read_metadata, read_verified
from tests.conftest import EXAMPLES

# The drop in val AUC the issue allows an INT8 model against its fp32 source.
MAX_AUC_DROP = 0.01


@pytest.mark.parametrize("name", [DEFAULT_MODEL, "aigen-effnet-lite0.ffhq"])
def test_each_shipped_export_is_verified_and_keeps_auc(name):
    path = find_onnx(name)
    assert path.parent == default_onnx_dir() and path.name.endswith(".int8-static.onnx")
    card = read_metadata(path)
    read_verified(path, card)
    source = get_pretrained_cfg(name)
    assert card["weights_sha256"] == source.sha256, "the export must come from the shipped weights"
    ((split, metrics),) = card["metrics"].items()
    # an export is scored on its model's first data folder; a model trained on several reports it per folder
    folder = split.removesuffix("/val")
    same = source.metrics.get(split) or next(v for k, v in source.metrics.items() if k.endswith(f"/val {folder}"))
    assert metrics["n"] == same["n"], "scored on the same held-out split as the weights"
    assert metrics["auc"] >= same["auc"] - MAX_AUC_DROP


def test_auto_backend_runs_shipped_exports_and_torch_where_there_is_none():
    detector = Detector.from_pretrained(cache_size=0)
    assert isinstance(detector.model, OnnxModel), "the face model ships an INT8 export"
    assert isinstance(detector.image_model, torch.nn.Module), "CLIP heads have no export: torch (bf16 where fast) serves them"
    assert isinstance(detector.audio_model, torch.nn.Module), "audio models have no export: torch serves them"
    torch_detector = Detector.from_pretrained(backend="torch", cache_size=0)
    assert isinstance(torch_detector.model, torch.nn.Module) and isinstance(torch_detector.image_model, torch.nn.Module)
    assert detector.fingerprint != torch_detector.fingerprint, "cached results never cross backends"
    clip = EXAMPLES / "fake_ffpp_deepfakes_866_878.mp4"
    fast, reference = detector.detect(clip), torch_detector.detect(clip)
    assert fast.status == reference.status == "ok"
    assert fast.score == pytest.approx(reference.score, abs=0.05)
    assert [t.track_id for t in fast.faces] == [t.track_id for t in reference.faces]


def test_onnx_backend_without_an_export_is_one_clear_error(tmp_path):
    with pytest.raises(ModelError, match=r"no ONNX export.*fakescope export"):
        Detector.from_pretrained(backend="onnx", onnx_dir=tmp_path, image_model=None, audio_model=None)
    assert choose_backend(DEFAULT_MODEL, "auto", onnx_dir=tmp_path) == "torch"
    assert choose_backend(DEFAULT_AUDIO_MODEL, "auto") == "torch"
    assert choose_backend(DEFAULT_MODEL, "auto", device="cuda") == "torch"
    with pytest.raises(ModelError, match="unknown backend 'tvm'"):
        choose_backend(DEFAULT_MODEL, "tvm")


def test_threads_and_batch_size_reach_the_engine():
    before = torch.get_num_threads()
    try:
        detector = Detector.from_pretrained(threads=1, batch_size=4, image_model=None, audio_model=None, cache_size=0)
    finally:
        torch.set_num_threads(before)
    assert detector.model.threads == 1 and detector.batch_size == 4
    result = detector.detect(EXAMPLES / "real_ffpp_866.mp4")
    assert result.status == "ok" and result.faces_found >= 1
    json.dumps(result.model_dump(mode="json"))


def test_models_lists_each_shipped_export_with_its_auc():
    from typer.testing import CliRunner

    from fakescope.cli import app

    res = CliRunner().invoke(app, ["models", "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.output)}
    export = rows[DEFAULT_MODEL]["onnx"]["int8-static"]
    assert export["sha256"] == read_metadata(find_onnx(DEFAULT_MODEL))["sha256"]
    assert export["metrics"]["dfdc_faces/val"]["auc"] > 0.8
    assert rows[DEFAULT_AUDIO_MODEL]["onnx"] == {}
