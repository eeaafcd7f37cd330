"""ONNX exports of the shipped default model: same outputs as torch on real crops, a complete card, INT8 within its AUC bound."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from fakescope.errors import ModelError
from fakescope.models import DEFAULT_MODEL, get_pretrained_cfg, sha256_file
from fakescope.models.onnx import OnnxModel
from fakescope.models.transforms import crops_to_tensor
from fakescope.optimize.export import export_model
from fakescope.optimize.quantize import make_variant, sensitive_convs

# Measured on the full val split (1,200 crops) the drop is far smaller; on 200 crops one pair flipping moves AUC by 1e-4.
INT8_STATIC_MAX_AUC_DROP = 0.02


def test_fp32_export_matches_torch_on_real_crops(exported, default_model, val_crops):
    x = crops_to_tensor(val_crops, default_model.pretrained_cfg)
    onnx_model = OnnxModel(exported["fp32"].onnx, threads=1)
    with torch.inference_mode():
        expected = default_model(x)
    got = onnx_model(x)
    torch.testing.assert_close(got["logits"], expected["logits"], atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(got["prob"], expected["prob"], atol=1e-4, rtol=1e-3)
    single = onnx_model(x[:1])
    assert single["prob"].shape == (1,), "the batch axis must be dynamic"
    torch.testing.assert_close(single["prob"], got["prob"][:1], atol=1e-5, rtol=1e-4)


def test_graph_contract_and_card(exported):
    export = exported["fp32"]
    cfg = get_pretrained_cfg(DEFAULT_MODEL)
    graph = onnx.load(str(export.onnx))
    assert max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert [i.name for i in graph.graph.input] == ["input"]
    dims = graph.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == list(cfg.input_size)
    assert sorted(o.name for o in graph.graph.output) == ["logits", "prob"]
    assert not any(n.op_type == "BatchNormalization" for n in graph.graph.node), "conv-bn pairs must be folded"
    card = json.loads(export.metadata.read_text())
    assert card["sha256"] == sha256_file(export.onnx) and card["size_bytes"] == export.onnx.stat().st_size
    assert card["weights_sha256"] == cfg.sha256 and card["weights"] == cfg.file
    assert card["temperature"] == cfg.temperature and card["thresholds"] == cfg.thresholds
    assert (card["mean"], card["std"], card["image_size"]) == (list(cfg.mean), list(cfg.std), 224)
    assert card["variant"] == "fp32" and card["input"] == "input" and card["pruning"] is None
    assert card["metrics"]["dfdc_faces/val"]["n"] == 200
    assert card["recipe"] == f"fakescope export {DEFAULT_MODEL} --format onnx"


def test_prob_output_is_the_calibrated_logit(exported, val_crops):
    model = OnnxModel(exported["int8-static"].onnx, threads=1)
    out = model(crops_to_tensor(val_crops, model.pretrained_cfg))
    expected = torch.sigmoid(out["logits"] / model.pretrained_cfg.temperature)
    torch.testing.assert_close(out["prob"], expected, atol=1e-5, rtol=1e-4)


def test_int8_static_keeps_auc_within_the_stated_drop(exported):
    fp32 = exported["fp32"].metrics["dfdc_faces/val"]
    int8 = exported["int8-static"].metrics["dfdc_faces/val"]
    assert fp32["n"] == int8["n"] == 200
    assert fp32["auc"] > 0.8, "the shipped model should separate the val crops"
    assert int8["auc"] >= fp32["auc"] - INT8_STATIC_MAX_AUC_DROP
    card = json.loads(exported["int8-static"].metadata.read_text())
    assert card["calibration"] == {"split": "calib", "crops": 64, "method": "minmax"}
    assert exported["int8-static"].onnx.stat().st_size < exported["fp32"].onnx.stat().st_size / 3


def test_dynamic_int8_and_fp16_variants_run(exported, tmp_path, val_crops, default_model):
    import onnxruntime as ort

    x = crops_to_tensor(val_crops, default_model.pretrained_cfg).contiguous().numpy()
    reference = ort.InferenceSession(str(exported["fp32"].onnx)).run(["prob"], {"input": x})[0]
    fp16 = make_variant(exported["fp32"].onnx, tmp_path / "fp16.onnx", "fp16")
    session = ort.InferenceSession(str(fp16))
    assert session.get_inputs()[0].type == "tensor(float)", "fp16 keeps float32 inputs"
    np.testing.assert_allclose(session.run(["prob"], {"input": x})[0], reference, atol=0.02)
    dynamic = make_variant(exported["fp32"].onnx, tmp_path / "dyn.onnx", "int8-dynamic")
    graph = onnx.load(str(dynamic))
    assert any(n.op_type == "ConvInteger" for n in graph.graph.node)
    assert len(sensitive_convs(onnx.load(str(exported["fp32"].onnx)))) == 17, "the stem and 16 depthwise convs stay fp32"
    probs = ort.InferenceSession(str(dynamic)).run(["prob"], {"input": x})[0]
    assert probs.shape == (8,) and np.isfinite(probs).all()


def test_audio_models_and_unknown_options_are_clear_errors(tmp_path):
    with pytest.raises(ModelError, match="audio models cannot be exported to ONNX"):
        export_model("audio-bigru-attn.speech", tmp_path)
    with pytest.raises(ModelError, match="unknown ONNX variant 'int4'"):
        export_model(DEFAULT_MODEL, tmp_path, quantize="int4")
    with pytest.raises(ModelError, match="unknown export format 'tflite'"):
        export_model(DEFAULT_MODEL, tmp_path, fmt="tflite")
    assert not list(tmp_path.iterdir())
