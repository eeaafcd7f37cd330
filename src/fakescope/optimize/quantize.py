"""Smaller, faster ONNX variants of an fp32 export.

- `int8-static`: weights int8 per output channel, activations uint8 with ranges calibrated on
  real crops (QDQ format, so ONNX Runtime fuses each Q/DQ pair into integer kernels). The fast
  one on CPU: VNNI instructions do 4 int8 multiply-adds per lane.
- `int8-dynamic`: int8 weights, activation ranges measured per batch at run time; no
  calibration data, but convolutions become ConvInteger, which ONNX Runtime runs far slower
  than its fp32 convolutions: it suits MatMul-heavy models, not this CNN (see the benchmark).
- `fp16`: weights and activations in half precision with float32 inputs and outputs kept, for
  GPUs and ARM cores with fp16 arithmetic; x86 CPUs gain only the smaller file.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process
from onnxruntime.transformers.float16 import convert_float_to_float16

from fakescope.errors import ModelError
from fakescope.models.onnx_artifact import INPUT_NAME, check_variant

log = logging.getLogger(__name__)
CALIBRATION_BATCH = 32


class CropBatches(CalibrationDataReader):
    """Feeds calibration crops to ONNX Runtime's calibrator in batches of `batch_size`."""

    def __init__(self, inputs: np.ndarray, batch_size: int = CALIBRATION_BATCH) -> None:
        self._batches: Iterator[dict[str, np.ndarray]] = (
            {INPUT_NAME: np.ascontiguousarray(inputs[i : i + batch_size], dtype=np.float32)}
            for i in range(0, len(inputs), batch_size)
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)


def preprocess(src: Path, dst: Path) -> Path:
    """ONNX Runtime's recommended pre-pass: shape inference and graph optimisation, so quantization sees fused ops."""
    quant_pre_process(str(src), str(dst))
    return dst


def quantize_int8_static(src: Path, dst: Path, calibration: np.ndarray, *, reduce_range: bool = False) -> Path:
    """QDQ, per-channel int8 weights, uint8 activations calibrated (min/max) on `calibration` (N, 3, H, W).

    `reduce_range` keeps weights to 7 bits: needed only on x86 CPUs without VNNI, where
    uint8 x int8 products can saturate.
    """
    if len(calibration) == 0:
        raise ModelError("int8-static needs calibration crops, got none")
    with tempfile.TemporaryDirectory() as tmp:
        prepared = preprocess(src, Path(tmp) / "prepared.onnx")
        quantize_static(
            str(prepared),
            str(dst),
            CropBatches(calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            reduce_range=reduce_range,
            nodes_to_exclude=head_nodes(onnx.load(str(prepared))),
        )
    return dst


def quantize_int8_dynamic(src: Path, dst: Path) -> Path:
    """int8 per-channel weights; activations quantized per batch at run time (no calibration data).

    The first convolution and the depthwise ones stay fp32: with ranges taken per batch and
    per tensor they cost the most accuracy (docs/RESULTS.md, Inference backends).
    """
    with tempfile.TemporaryDirectory() as tmp:
        prepared = preprocess(src, Path(tmp) / "prepared.onnx")
        graph = onnx.load(str(prepared))
        keep = sensitive_convs(graph) + head_nodes(graph)
        quantize_dynamic(str(prepared), str(dst), weight_type=QuantType.QInt8, per_channel=True, nodes_to_exclude=keep)
    return dst


def head_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the nodes after the last convolution (pooling, linear head, temperature, sigmoid): they stay float,
    so `logits` and `prob` keep full precision instead of 256 levels (a few MFLOPs, nothing to gain)."""
    nodes = list(model.graph.node)
    last_conv = max((i for i, node in enumerate(nodes) if node.op_type == "Conv"), default=-1)
    return [node.name for node in nodes[last_conv + 1 :] if node.name]


def sensitive_convs(model: onnx.ModelProto) -> list[str]:
    """Names of the first convolution (raw pixels in) and of depthwise convolutions (one filter per channel)."""
    convs = [node for node in model.graph.node if node.op_type == "Conv"]
    depthwise = [node for node in convs if any(a.name == "group" and a.i > 1 for a in node.attribute)]
    return [node.name for node in convs[:1] + depthwise if node.name]


def convert_fp16(src: Path, dst: Path) -> Path:
    """Half-precision weights and activations; the graph still takes and returns float32."""
    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    onnx.save(model, str(dst))
    return dst


def make_variant(src: Path, dst: Path, variant: str, *, calibration: np.ndarray | None = None) -> Path:
    """Write `variant` of the fp32 export `src` to `dst` (`calibration` is needed by int8-static only)."""
    variant = check_variant(variant)
    log.info("writing %s variant %s", variant, dst.name)
    if variant == "fp32":
        dst.write_bytes(Path(src).read_bytes())
        return dst
    if variant == "int8-static":
        if calibration is None:
            raise ModelError("int8-static needs calibration crops")
        return quantize_int8_static(src, dst, calibration)
    if variant == "int8-dynamic":
        return quantize_int8_dynamic(src, dst)
    return convert_fp16(src, dst)
