"""What a model is, in words and numbers: the one description `fakescope models` and GET /v1/models show.

Both read it from the model's PretrainedCfg (its card merged in), so the CLI's listing and the
service's answer can never disagree about a model's weights version, input or verdict bands.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from fakescope.models.config import WEIGHTS_PACKAGE, PretrainedCfg
from fakescope.models.onnx_artifact import exports_of
from fakescope.models.registry import get_pretrained_cfg


def weights_version(cfg: PretrainedCfg) -> str:
    """The short weights version every Result's model_versions carries: 12 hex characters of the sha256."""
    return (cfg.sha256 or "untrained")[:12]


def model_info(name: str, cfg: PretrainedCfg | None = None) -> dict[str, Any]:
    """The full card of a registered model (`fakescope models --json`): input, weights file and checksum,
    whether they are installed, metrics, calibration, verdict bands, recipe and the shipped ONNX exports."""
    cfg = cfg or get_pretrained_cfg(name)
    path = cfg.weights_path()
    installed = bool(path and path.is_file())
    evaluated_on, val = next(iter(cfg.metrics.items()), (None, {}))
    shipped = Path(str(resources.files(WEIGHTS_PACKAGE)))
    exports = {
        variant: {
            "file": f"{name}.{variant}.onnx",
            "sha256": card["sha256"],
            "size_mb": round(card.get("size_bytes", 0) / 1e6, 2),
            "metrics": card.get("metrics", {}),
        }
        for variant, card in exports_of(name, shipped).items()
    }
    return {
        "name": name,
        "input": cfg.input_kind,
        "input_size": list(cfg.input_size),
        "weights": cfg.file,
        "installed": installed,
        "sha256": cfg.sha256,
        "size_mb": round(path.stat().st_size / 1e6, 2) if path and installed else None,
        "metrics": cfg.metrics,
        "evaluated_on": evaluated_on,
        "dataset": cfg.dataset,
        "recipe": cfg.recipe,
        "temperature": cfg.temperature,
        "thresholds": cfg.thresholds,
        "auc": val.get("auc"),
        "logloss": val.get("logloss"),
        "onnx": exports,
    }


def model_summary(name: str, cfg: PretrainedCfg) -> dict[str, Any]:
    """The short form of the card for a loaded model (GET /v1/models): name, weights version, input kind
    and the numeric verdict bands."""
    return {
        "name": name,
        "version": weights_version(cfg),
        "input_kind": cfg.input_kind,
        "thresholds": {k: float(v) for k, v in (cfg.thresholds or {}).items() if isinstance(v, int | float)},
    }
