"""Quantization-aware training: the simulation is the export's int8 arithmetic, a QAT step trains, and the model still exports."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torch.utils.data import DataLoader, TensorDataset

from fakescope.models import create_model
from fakescope.optimize.export import export_onnx
from fakescope.optimize.quantize import make_variant
from fakescope.train.loop import OneCycle, train_one_epoch
from fakescope.train.qat import QatConv2d, folded_norms, prepare_qat, strip_fake_quant

SIZE = 64  # the detector is fully convolutional: a small input keeps the test fast


def small_detector():
    torch.manual_seed(0)
    model = create_model("faceswap-effnet-lite0.dfdc", pretrained=False)
    model.pretrained_cfg = replace(model.pretrained_cfg, input_size=(3, SIZE, SIZE))
    return model


def quantize_ref(x: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, low: int, high: int) -> torch.Tensor:
    return (torch.clamp(torch.round(x / scale) + zero, low, high) - zero) * scale


def test_simulation_is_the_folded_int8_convolution():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8))
    norm = net[1]
    norm.running_mean.uniform_(-1, 1)
    norm.running_var.uniform_(0.5, 2)
    norm.weight.data.uniform_(-2, 2)
    net.eval()
    x = torch.randn(4, 3, 8, 8) * 3
    folded = fuse_conv_bn_eval(net[0], norm)
    prepare_qat(net)
    assert isinstance(net[0], QatConv2d) and folded_norms(net) == [norm]
    net.eval()
    got = net(x)

    w = folded.weight.detach()
    w_scale = w.abs().amax(dim=(1, 2, 3), keepdim=True) / 127
    w_q = quantize_ref(w, w_scale, torch.zeros(()), -127, 127)
    low, high = min(x.min().item(), 0.0), max(x.max().item(), 0.0)
    x_scale = (high - low) / 255
    x_q = quantize_ref(x, torch.tensor(x_scale), torch.tensor(round(-low / x_scale)), 0, 255)
    expected = nn.functional.conv2d(x_q, w_q, folded.bias, padding=1)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(got, folded(x), atol=1e-3), "the rounding must be visible"


def test_qat_step_trains_keeps_statistics_and_layout_then_exports(tmp_path):
    model = small_detector()
    keys = list(model.state_dict())
    prepare_qat(model)
    assert list(model.state_dict()) == keys, "checkpoints and shipped weights keep their layout"
    norms = folded_norms(model)
    stats = [n.running_mean.clone() for n in norms]
    weight = model.backbone.conv_stem.weight.detach().clone()
    data = TensorDataset(torch.randn(4, 3, SIZE, SIZE), torch.tensor([0, 1, 0, 1]))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    loss = train_one_epoch(
        model,
        DataLoader(data, batch_size=4),
        optimizer,
        OneCycle(1e-2, 1, warmup=0.0),
        device=torch.device("cpu"),
        amp=False,
        frozen=norms,
    )
    assert np.isfinite(loss)
    assert not torch.equal(model.backbone.conv_stem.weight, weight), "one step moves the weights"
    assert all(torch.equal(n.running_mean, s) for n, s in zip(norms, stats, strict=True)), "folded norms stay frozen"

    strip_fake_quant(model).eval()
    assert not any(isinstance(m, QatConv2d) for m in model.modules())
    x = torch.randn(2, 3, SIZE, SIZE)
    fp32 = export_onnx(model, tmp_path / "qat.onnx")
    session = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"])
    with torch.inference_mode():
        expected = model(x)["logits"].numpy()
    np.testing.assert_allclose(session.run(["logits"], {"input": x.numpy()})[0], expected, atol=1e-3, rtol=1e-3)
    int8 = make_variant(fp32, tmp_path / "qat.int8.onnx", "int8-static", calibration=np.random.randn(8, 3, SIZE, SIZE))
    ops = {n.op_type for n in onnx.load(str(int8)).graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
