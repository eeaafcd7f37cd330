"""ONNX Runtime backend: an exported model used exactly where a torch detector is.

`OnnxModel` follows the inference half of the model contract (`models/base.py`): it
is called with a normalised (N, 3, H, W) float tensor and returns `{"prob", "logits"}`
tensors, and exposes `pretrained_cfg` (input contract, temperature, thresholds) and a
`device`, so `detect.scoring.score_crops` and the pipelines take it unchanged. The session
runs sequentially with `threads` intra-op threads and every graph optimisation on.
"""

from __future__ import annotations

import os
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import onnxruntime as ort
import torch
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from fakescope.errors import ModelError
from fakescope.models import create_model, get_pretrained_cfg
from fakescope.models.base import ClassifierModel
from fakescope.models.config import WEIGHTS_PACKAGE, PretrainedCfg
from fakescope.models.onnx_artifact import INPUT_NAME, OUTPUT_NAMES, artifact_stem, check_variant, read_metadata, read_verified
from fakescope.models.registry import resolve_name

Backend = Literal["torch", "onnx"]
BACKENDS: tuple[str, ...] = get_args(Backend)
# Which export `--backend onnx` picks when none is named: the fastest whose accuracy was checked first.
VARIANT_PREFERENCE = ("int8-static", "fp32", "fp16", "int8-dynamic")
_LOAD_ERRORS = (
    ort_state.Fail,
    ort_state.InvalidArgument,
    ort_state.InvalidProtobuf,
    ort_state.InvalidGraph,
    ort_state.NotImplemented,
    ort_state.RuntimeException,
)


def default_threads() -> int:
    """The cores this process may run on (CPU affinity), as ONNX Runtime's intra-op default."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def make_session(model: bytes, *, threads: int | None = None, name: str = "model") -> ort.InferenceSession:
    """A CPU session: `threads` intra-op threads (default: all cores), one inter-op thread, all graph optimisations.

    Idle worker threads sleep instead of spinning: between batches the pipeline's other stages
    (decoding, face detection) need those cores. Measured on 2 cores with int8-static, spinning
    gained nothing at batch 32 and helped at batch 1 only on a quiet machine (docs/RESULTS.md,
    Inference backends).
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    except _LOAD_ERRORS as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ModelError(f"{name}: not a valid ONNX model ({reason})") from None


def cfg_from_metadata(metadata: dict[str, Any]) -> PretrainedCfg:
    """The registered model's config with the contract and calibration the export recorded."""
    base = get_pretrained_cfg(str(metadata["model"]))
    return replace(
        base,
        sha256=str(metadata["sha256"]),
        input_size=tuple(int(v) for v in metadata["input_size"]),
        mean=tuple(float(v) for v in metadata["mean"]),
        std=tuple(float(v) for v in metadata["std"]),
        face_margin=float(metadata.get("face_margin", base.face_margin)),
        face_shift=float(metadata.get("face_shift", base.face_shift)),
        temperature=float(metadata["temperature"]),
        thresholds=metadata.get("thresholds") or base.thresholds,
        metrics=metadata.get("metrics", {}),
        extra={**base.extra, "backend": "onnx", "variant": metadata["variant"], "weights_sha256": base.sha256},
    )


class OnnxModel:
    """An exported detector behind ONNX Runtime, callable like the torch model at inference."""

    device = torch.device("cpu")

    def __init__(self, path: str | Path, *, threads: int | None = None) -> None:
        self.path = Path(path)
        self.metadata = read_metadata(self.path)
        self.session = make_session(read_verified(self.path, self.metadata), threads=threads, name=self.path.name)
        inputs = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        if inputs != [INPUT_NAME] or sorted(outputs) != sorted(OUTPUT_NAMES):
            raise ModelError(
                f"{self.path.name}: expected input {INPUT_NAME!r} and outputs {OUTPUT_NAMES}, got {inputs} -> {outputs}"
            )
        self.pretrained_cfg = cfg_from_metadata(self.metadata)
        self.threads = threads or default_threads()

    @property
    def name(self) -> str:
        return str(self.metadata["model"])

    @property
    def variant(self) -> str:
        return str(self.metadata["variant"])

    def __call__(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """`x`: (N, 3, H, W) normalised as `pretrained_cfg` says; channels_last input is made contiguous (one copy)."""
        array = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        prob, logits = self.session.run(list(OUTPUT_NAMES), {INPUT_NAME: array})
        return {"prob": torch.from_numpy(prob), "logits": torch.from_numpy(logits)}

    def eval(self) -> OnnxModel:
        return self

    def to(self, device: str | torch.device | torch.dtype | None = None, **_: Any) -> OnnxModel:
        """CPU only (ONNX Runtime's CPU provider runs the session); dtype and memory format are the export's."""
        if device is not None and not isinstance(device, torch.dtype) and torch.device(device).type != "cpu":
            raise ModelError(f"{self.path.name}: the onnx backend runs on CPU; use --backend torch for {device}")
        return self

    def __repr__(self) -> str:
        return f"OnnxModel({self.path.name}, threads={self.threads})"


def default_onnx_dir() -> Path:
    """Where shipped exports live: next to the torch weights."""
    return Path(str(resources.files(WEIGHTS_PACKAGE)))


def find_onnx(name: str, *, variant: str | None = None, onnx_dir: str | Path | None = None) -> Path:
    """`<onnx_dir>/<model>.<variant>.onnx`; without a variant the first present in VARIANT_PREFERENCE."""
    root = Path(onnx_dir) if onnx_dir is not None else default_onnx_dir()
    full = resolve_name(name)
    variants = [check_variant(variant)] if variant else list(VARIANT_PREFERENCE)
    for candidate in variants:
        path = root / f"{artifact_stem(full, candidate)}.onnx"
        if path.is_file():
            return path
    wanted = variant or "any variant"
    raise ModelError(
        f"{full}: no ONNX export ({wanted}) in {root}; "
        f"create one with `fakescope export {full} --format onnx --quantize int8-static --out {root}`"
    )


def has_onnx(name: str, onnx_dir: str | Path | None = None) -> bool:
    try:
        find_onnx(name, onnx_dir=onnx_dir)
    except ModelError:
        return False
    return True


def choose_backend(name: str, backend: str, *, device: str = "cpu", onnx_dir: str | Path | None = None) -> Backend:
    """ "auto": ONNX Runtime on CPU when `name` has an export (the fast path), torch otherwise."""
    if backend == "auto":
        return "onnx" if torch.device(device).type == "cpu" and has_onnx(name, onnx_dir) else "torch"
    if backend not in BACKENDS:
        raise ModelError(f"unknown backend {backend!r} (choose from auto, {', '.join(BACKENDS)})")
    return backend  # type: ignore[return-value]


def load_model(
    name: str,
    *,
    backend: str = "torch",
    variant: str | None = None,
    onnx_dir: str | Path | None = None,
    threads: int | None = None,
    device: str = "cpu",
) -> ClassifierModel | OnnxModel:
    """A registered model with its shipped weights (torch) or its checked ONNX export (onnx)."""
    if backend == "torch":
        return create_model(name, pretrained=True).to(device)
    if backend == "onnx":
        return OnnxModel(find_onnx(name, variant=variant, onnx_dir=onnx_dir), threads=threads).to(device)
    raise ModelError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
