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
from typing import Any, Literal

from fakescope.errors import ModelError

WEIGHTS_PACKAGE = "fakescope.weights"
THRESHOLD_KEYS = ("real_below", "fake_at_or_above")
InputKind = Literal["face", "image", "audio", "face_sequence"]


@dataclass(frozen=True)
class PretrainedCfg:
    """Input contract and provenance of one set of weights.

    `input_kind` says what the model looks at: "face" = a face crop cut with `face_margin` /
    `face_shift`; "image" = the whole picture, resized (not cropped) to `input_size` with
    antialiased bicubic resampling, so nothing the generator drew is cut away (the aspect
    ratio is not kept: training resizes the same way); "audio" = mono speech at
    `sample_rate`, trimmed and loudness-normalised (media.audio.prepare_speech), cut into
    `window_seconds` windows every `hop_seconds` (the model computes its own features). `thresholds` are the verdict bands
    chosen on validation data by training: `{"real_below": p, "fake_at_or_above": q, ...}`.
    """

    file: str | None = None
    sha256: str | None = None
    input_size: tuple[int, int, int] = (3, 224, 224)
    input_kind: InputKind = "face"
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    # Face crop: square of side max(w, h) * (1 + face_margin) around the detector's box,
    # centre moved down by face_shift * side (matches how the training crops were cut).
    face_margin: float = 0.0
    face_shift: float = 0.0
    sample_rate: int = 16_000
    window_seconds: float = 4.0
    hop_seconds: float = 2.0
    label_names: tuple[str, str] = ("real", "fake")
    temperature: float = 1.0
    thresholds: dict[str, float] | None = None
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

    def training_split(self) -> tuple[float, float, int] | None:
        """(val_fraction, calib_fraction, seed) of the run that trained these weights, from the
        card; eval and stacking rebuild exactly its splits from them. None when not recorded."""
        config = self.extra.get("config")
        if not config:
            return None
        return float(config["data"]["val_fraction"]), float(config["data"]["calib_fraction"]), int(config["seed"])

    def with_card(self) -> PretrainedCfg:
        """Merge the JSON card written by training (sha256, metrics, calibration, thresholds, input) if present."""
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
            input_size=_card_triple(card, "input_size", int, card_path) or self.input_size,
            mean=_card_triple(card, "mean", float, card_path) or self.mean,
            std=_card_triple(card, "std", float, card_path) or self.std,
            metrics=card.get("metrics", self.metrics),
            temperature=float(card.get("temperature", self.temperature)),
            thresholds=_card_thresholds(card, card_path) or self.thresholds,
            recipe=card.get("recipe", self.recipe),
            dataset=card.get("dataset", self.dataset),
            extra={**self.extra, **card.get("extra", {})},
        )


def _card_triple(card: dict[str, Any], key: str, kind: type, card_path: Path) -> tuple[Any, ...] | None:
    """`input_size` / `mean` / `std` from a card: three numbers, or None when the card has no such key."""
    value = card.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 3 or not all(isinstance(v, int | float) for v in value):
        raise ModelError(f"{card_path.name}: {key!r} must be a list of 3 numbers, got {value!r}")
    return tuple(kind(v) for v in value)


def _card_thresholds(card: dict[str, Any], card_path: Path) -> dict[str, float] | None:
    """Verdict bands from a card, checked: both keys present and 0 <= real_below <= fake_at_or_above <= 1."""
    value = card.get("thresholds")
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ModelError(f"{card_path.name}: 'thresholds' must be an object, got {value!r}")
    for key in THRESHOLD_KEYS:
        if not isinstance(value.get(key), int | float):
            raise ModelError(f"{card_path.name}: 'thresholds.{key}' must be a number, got {value.get(key)!r}")
    if not 0.0 <= value["real_below"] <= value["fake_at_or_above"] <= 1.0:
        raise ModelError(f"{card_path.name}: 'thresholds' must satisfy 0 <= real_below <= fake_at_or_above <= 1")
    return {**value, **{key: float(value[key]) for key in THRESHOLD_KEYS}}
