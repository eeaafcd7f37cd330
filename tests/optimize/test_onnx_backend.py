"""OnnxModel: a checked drop-in for the torch model in the inference path; bad files are one-line ModelErrors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from fakescope.detect import Detector
from fakescope.detect.scoring import score_crops
from fakescope.errors import ModelError
from fakescope.faces import create_face_detector
from fakescope.models import DEFAULT_MODEL
from fakescope.models.onnx import OnnxModel, find_onnx, load_model
from fakescope.models.onnx_artifact import artifact_stem
from tests.conftest import shared


@pytest.fixture
def copied(exported, tmp_path):
    """A private copy of the fp32 export (tests may break it)."""
    onnx_path = tmp_path / exported["fp32"].onnx.name
    shutil.copy(exported["fp32"].onnx, onnx_path)
    shutil.copy(exported["fp32"].metadata, onnx_path.with_suffix(".json"))
    return onnx_path


def test_scores_like_the_torch_model_in_the_inference_path(exported, default_model, val_crops):
    onnx_model = OnnxModel(exported["fp32"].onnx, threads=2)
    assert onnx_model.eval() is onnx_model and onnx_model.to("cpu") is onnx_model
    assert onnx_model.pretrained_cfg.face_margin == default_model.pretrained_cfg.face_margin
    assert onnx_model.pretrained_cfg.extra["variant"] == "fp32"
    np.testing.assert_allclose(score_crops(onnx_model, val_crops, batch_size=3), score_crops(default_model, val_crops), atol=1e-4)


def test_detector_runs_on_the_onnx_backend(exported, default_model):
    face = sorted(shared("dfdc_faces", "real").iterdir())[0]
    faces = create_face_detector("mtcnn")
    onnx_detector = Detector(OnnxModel(exported["fp32"].onnx), model_name=DEFAULT_MODEL, face_detector=faces)
    torch_detector = Detector(default_model, model_name=DEFAULT_MODEL, face_detector=faces)
    got, expected = onnx_detector.detect(face), torch_detector.detect(face)
    assert got.status == expected.status == "ok" and got.device == "cpu"
    assert got.score == pytest.approx(expected.score, abs=1e-4)
    assert got.verdict == expected.verdict


def test_cuda_is_refused_with_a_clear_error(exported):
    with pytest.raises(ModelError, match="the onnx backend runs on CPU"):
        OnnxModel(exported["fp32"].onnx).to("cuda")


def test_a_tampered_model_file_is_refused(copied):
    data = bytearray(copied.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copied.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"sha256 \w+… does not match its metadata"):
        OnnxModel(copied)


def test_a_corrupt_model_with_matching_metadata_is_a_clear_error(copied):
    import hashlib

    garbage = b"this is not an onnx model" * 10
    copied.write_bytes(garbage)
    card = json.loads(copied.with_suffix(".json").read_text())
    card["sha256"] = hashlib.sha256(garbage).hexdigest()
    copied.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="not a valid ONNX model"):
        OnnxModel(copied)


def test_missing_or_broken_files_are_clear_errors(copied):
    card = copied.with_suffix(".json")
    alone = copied.with_name("gone.fp32.onnx")
    shutil.copy(card, alone.with_suffix(".json"))
    with pytest.raises(ModelError, match="ONNX model not found"):
        OnnxModel(alone)
    card.write_text("{not json")
    with pytest.raises(ModelError, match="metadata is not valid JSON"):
        OnnxModel(copied)
    card.write_text(json.dumps({"model": DEFAULT_MODEL}))
    with pytest.raises(ModelError, match="metadata lacks variant"):
        OnnxModel(copied)
    card.unlink()
    with pytest.raises(ModelError, match="metadata not found"):
        OnnxModel(copied)


def test_find_and_load_by_model_name(copied):
    assert find_onnx(DEFAULT_MODEL, onnx_dir=copied.parent) == copied
    model = load_model(DEFAULT_MODEL, backend="onnx", onnx_dir=copied.parent, threads=1)
    assert isinstance(model, OnnxModel) and model.variant == "fp32"
    assert isinstance(load_model(DEFAULT_MODEL, backend="torch"), torch.nn.Module)
    with pytest.raises(ModelError, match=r"no ONNX export \(int8-static\).*fakescope export"):
        find_onnx(DEFAULT_MODEL, variant="int8-static", onnx_dir=copied.parent)
    with pytest.raises(ModelError, match="unknown backend 'tvm'"):
        load_model(DEFAULT_MODEL, backend="tvm")
    assert artifact_stem(DEFAULT_MODEL, "int8-static", prune=0.3) == f"{DEFAULT_MODEL}.pruned-l1-30.int8-static"
