"""Pretrained configs: everything needed to use a set of weights, kept next to them.

Like timm's `PretrainedCfg` and torchvision's `Weights.meta`: the input contract (size,
mean/std, how a face is cropped) travels with the weights, so no caller hard-codes 224 or
ImageNet statistics. Metrics and the checksum come from the JSON card the training command
writes beside the weight file, so what `fakescope models` prints is what training measured.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

WEIGHTS_PACKAGE = "fakescope.weights"


@dataclass(frozen=True)
class PretrainedCfg:
    """Input contract and provenance of one set of weights."""

    file: str | None = None
    sha256: str | None = None
    input_size: tuple[int, int, int] = (3, 224, 224)
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    # Face crop: square of side max(w, h) * (1 + face_margin) around the detector's box,
    # centre moved down by face_shift * side (matches how the training crops were cut).
    face_margin: float = 0.0
    face_shift: float = 0.0
    label_names: tuple[str, str] = ("real", "fake")
    temperature: float = 1.0
    dataset: str = ""
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    recipe: str = ""
    license: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def image_size(self) -> int:
        return self.input_size[-1]

    def weights_path(self) -> Path | None:
        if self.file is None:
            return None
        return Path(str(resources.files(WEIGHTS_PACKAGE).joinpath(self.file)))

    def with_card(self) -> PretrainedCfg:
        """Merge the JSON card written by training (sha256, metrics, calibration) if present."""
        path = self.weights_path()
        if path is None:
            return self
        card_path = path.with_suffix(".json")
        if not card_path.is_file():
            return self
        card = json.loads(card_path.read_text())
        return replace(
            self,
            sha256=card.get("sha256", self.sha256),
            metrics=card.get("metrics", self.metrics),
            temperature=float(card.get("temperature", self.temperature)),
            recipe=card.get("recipe", self.recipe),
            dataset=card.get("dataset", self.dataset),
            extra={**self.extra, **card.get("extra", {})},
        )
