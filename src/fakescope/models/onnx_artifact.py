"""The exported-model artefact: `<model>.<variant>.onnx` plus `<model>.<variant>.json` beside it.

The JSON is the ONNX model's card: the input contract (name, shape, size, mean/std, crop
geometry), the calibration (temperature, verdict thresholds), provenance (variant, pruning,
sha256 of the .onnx and of the torch weights it came from) and the metrics measured on
held-out data. A loader trusts the .onnx only if its sha256 matches the card.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal, get_args

from fakescope.errors import ModelError

Variant = Literal["fp32", "int8-dynamic", "int8-static", "fp16"]
VARIANTS: tuple[str, ...] = get_args(Variant)
PruneMethod = Literal["l1", "channels"]
PRUNE_METHODS: tuple[str, ...] = get_args(PruneMethod)
INPUT_NAME = "input"
OUTPUT_NAMES = ("prob", "logits")
REQUIRED_KEYS = ("model", "variant", "input", "input_size", "mean", "std", "temperature", "sha256")


def check_variant(variant: str) -> Variant:
    if variant not in VARIANTS:
        raise ModelError(f"unknown ONNX variant {variant!r} (choose from {', '.join(VARIANTS)})")
    return variant  # type: ignore[return-value]


def artifact_stem(
    model_name: str, variant: str, *, prune: float | None = None, prune_method: str = "l1", fine_tuned: bool = False
) -> str:
    """`faceswap-effnet-lite0.dfdc.int8-static`; a pruned export (`…dfdc.pruned-l1-30[-ft].int8-static`) is named
    apart so it never shadows the plain one."""
    pruned = f".pruned-{prune_method}-{round(prune * 100)}{'-ft' if fine_tuned else ''}" if prune else ""
    return f"{model_name}{pruned}.{check_variant(variant)}"


def metadata_path(onnx_path: Path) -> Path:
    return Path(onnx_path).with_suffix(".json")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_metadata(onnx_path: Path, metadata: dict[str, Any]) -> Path:
    path = metadata_path(onnx_path)
    path.write_text(json.dumps(metadata, indent=2) + "\n")
    return path


def read_metadata(onnx_path: Path) -> dict[str, Any]:
    """The card of an exported model; ModelError when it is missing, not JSON or incomplete."""
    path = metadata_path(onnx_path)
    if not path.is_file():
        raise ModelError(f"{path}: metadata not found (every .onnx needs the .json written by `fakescope export`)")
    try:
        metadata = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f"{path}: metadata is not valid JSON ({err})") from None
    if not isinstance(metadata, dict):
        raise ModelError(f"{path}: metadata must be a JSON object")
    missing = [key for key in REQUIRED_KEYS if key not in metadata]
    if missing:
        raise ModelError(f"{path}: metadata lacks {', '.join(missing)}")
    check_variant(str(metadata["variant"]))
    return metadata


def read_verified(onnx_path: Path, metadata: dict[str, Any]) -> bytes:
    """The .onnx bytes, read once and checked against the card's sha256 (the same bytes are then loaded)."""
    path = Path(onnx_path)
    if not path.is_file():
        raise ModelError(f"{path}: ONNX model not found")
    data = path.read_bytes()
    digest = sha256_bytes(data)
    if digest != metadata["sha256"]:
        raise ModelError(f"{path.name}: sha256 {digest[:12]}… does not match its metadata ({str(metadata['sha256'])[:12]}…)")
    return data


def exports_of(model_name: str, root: Path) -> dict[str, dict[str, Any]]:
    """The plain (unpruned) exports of `model_name` in `root`: variant -> card, for listings such as `fakescope models`."""
    found = {}
    for variant in VARIANTS:
        onnx_path = root / f"{artifact_stem(model_name, variant)}.onnx"
        if onnx_path.is_file():
            try:
                found[variant] = read_metadata(onnx_path)
            except ModelError:
                continue
    return found
