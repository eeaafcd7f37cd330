"""Fusing frame scores into identity scores, and identity scores into one media score.

A face swap usually touches one person, and in a clip only some frames show the blending
artefacts clearly; so an identity is scored by the mean of its most suspicious frames, and a
video by its most suspicious identity. The choice (top 50% mean, max over tracks) was compared
with six other rules on the 34 labelled clips (best LogLoss; no rule clearly best by AUC): see
benchmarks/fusion_study.py and docs/RESULTS.md, Videos.

Several detectors on one image (face swap on the faces, AI generation on the whole picture):
the image is fake if a face was swapped OR the whole picture was generated, so the fused
P(fake) is the largest of the detectors' calibrated scores (`fuse_detectors`). Max rather than
noisy-OR 1 - (1 - a)(1 - b): each detector is calibrated on its own balanced data, so two
uninformative 0.5 scores would fuse to 0.75 and every real image would collect both detectors'
false-positive mass; the max keeps the scale of a calibrated score (0.5 stays 0.5) and the
verdict is that of the most suspicious detector, as a video's is that of its most suspicious
identity. When no face is found, the face model's whole-image score is softened first
(`soften`, temperature NO_FACE_TEMPERATURE): the picture may be a tight face crop (the face
model is right) or no face at all (its score means little), so it counts with half its
logit rather than not at all. The factor 2 is a choice, not a fit: there is no labelled set
of face-less pictures for the face model yet.

A learned picture fusion replaces the max where one ships for the pair of models in use
(`PictureFusion`, fitted by `fakescope fit-fusion` on a mixed calibration set: face-swap crops,
AI pictures and real photos of both kinds): a logistic regression on the two detectors' logits,
their max and their P(fake), so a member that is noise on a domain (the face model on a generated portrait,
the picture model on a video frame) can be discounted instead of deciding by itself.

A video's face score is calibrated at video level where a calibration ships for the face model
(`VideoCalibration`, fitted by `fakescope fit-fusion configs/fusion/video.yaml` on labelled clips):
the frame model's temperature makes one crop's P(fake) honest, but the mean of a track's most
suspicious frames, maxed over tracks, sits higher than any one frame's, so genuine clips drift
towards `manipulated`. A monotone map sigmoid(a logit(s) + b) of every track score (the video's
score is their max, so it follows) and verdict bands chosen on whole clips fix the scale
without changing which clip ranks above which.

Faces and sound of one video (`fuse_modalities`): the weighted average of the two calibrated
P(fake), weights from `ModalityWeights` (CLI `--audio-weight`), so two unsure modalities
temper each other; but when one modality is confidently fake (P >= `confident`, 0.9) the
fused score is the max, because a cloned voice over a genuine video (the common fraud) must
not be averaged away by the honest faces, nor a face swap by a genuine soundtrack. A skipped
modality (no audio track, no face) simply drops out and the other gets the whole weight.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np

from fakescope.models.config import WEIGHTS_PACKAGE

TOP_FRACTION = 0.5
NO_FACE_TEMPERATURE = 2.0
PICTURE_FUSION_FILE = "picture_fusion.json"
VIDEO_CALIBRATION_FILE = "video_calibration.json"
_EPS = 1e-7


def track_score(frame_scores: Sequence[float], *, top_fraction: float = TOP_FRACTION) -> float:
    """Mean of the top `top_fraction` of frame scores (at least one frame)."""
    scores = np.sort(np.asarray(frame_scores, dtype=np.float64))[::-1]
    if scores.size == 0:
        raise ValueError("a track needs at least one scored frame")
    k = max(1, int(round(scores.size * top_fraction)))
    return float(scores[:k].mean())


def media_score(track_scores: Sequence[float]) -> float:
    """The most suspicious identity drives the verdict."""
    if len(track_scores) == 0:
        raise ValueError("no identity to score")
    return float(max(track_scores))


def timeline(
    timestamps: Sequence[float], scores: Sequence[float], duration: float, *, step: float = 1.0
) -> list[tuple[float, float, float]]:
    """Per-`step` bins (start, end, max frame score in the bin); bins with no scored frame are left out."""
    t = np.asarray(timestamps, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    bins: list[tuple[float, float, float]] = []
    n_bins = max(1, int(np.ceil(max(duration, float(t.max(initial=0.0)) + 1e-9) / step)))
    for i in range(n_bins):
        start, end = i * step, min((i + 1) * step, max(duration, (i + 1) * step))
        mask = (t >= start) & (t < start + step)
        if mask.any():
            bins.append((round(start, 3), round(end, 3), float(s[mask].max())))
    return bins


def soften(score: float, temperature: float) -> float:
    """sigmoid(logit(score) / temperature): the same evidence, less sure (towards 0.5) for temperature > 1."""
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    return float(1.0 / (1.0 + np.exp(-logit(score) / temperature)))


def fuse_detectors(scores: Sequence[float]) -> tuple[float, list[float]]:
    """Fused P(fake) = the largest detector score; weights are 1.0 for the detector that gave it
    (the first one on a tie) and 0.0 for the others."""
    if len(scores) == 0:
        raise ValueError("no detector score to fuse")
    best = int(np.argmax(np.asarray(scores, dtype=np.float64)))
    return float(scores[best]), [1.0 if i == best else 0.0 for i in range(len(scores))]


def logit(p: float) -> float:
    p = min(max(float(p), _EPS), 1.0 - _EPS)
    return float(np.log(p / (1.0 - p)))


@dataclass(frozen=True)
class PictureFusion:
    """P(fake) of a picture = sigmoid(a z_f + b z_p + c max(z_f, z_p) + d p_f + e p_p + bias), z = each
    detector's calibrated logit, p = its P(fake): the logits let a confident member speak, the bounded
    P(fake) terms let the fit cap a member whose confident scores are noise on the other's domain.
    Fitted for one (face model, picture model) pair, shipped in `weights/picture_fusion.json` with its
    out-of-fold metrics and verdict bands."""

    face_model: str
    image_model: str
    coef: tuple[float, float, float, float, float]
    bias: float
    thresholds: dict[str, float] | None = None

    def fuse(self, face: float, whole: float) -> tuple[float, list[float]]:
        """Fused P(fake) and each detector's share of the evidence (|its terms| / sum of |terms|)."""
        zf, zw = logit(face), logit(whole)
        a, b, c, d, e = self.coef
        terms = [a * zf + d * face + (c * zf if zf >= zw else 0.0), b * zw + e * whole + (c * zw if zw > zf else 0.0)]
        total = sum(abs(t) for t in terms) or 1.0
        return float(1.0 / (1.0 + np.exp(-(sum(terms) + self.bias)))), [abs(t) / total for t in terms]

    @classmethod
    def shipped(cls, face_model: str, image_model: str) -> PictureFusion | None:
        """The fusion fitted for exactly this pair, or None (the max rule then)."""
        entry = _shipped_entry(PICTURE_FUSION_FILE, face_model=face_model, image_model=image_model)
        if entry is None:
            return None
        return cls(face_model, image_model, tuple(entry["coef"]), float(entry["bias"]), entry.get("thresholds"))


@dataclass(frozen=True)
class VideoCalibration:
    """A face model's track (and so video) score on the video scale: sigmoid(slope logit(s) + bias),
    with the verdict bands chosen on whole clips. Shipped in `weights/video_calibration.json`."""

    face_model: str
    slope: float
    bias: float
    thresholds: dict[str, float] | None = None

    def __call__(self, score: float) -> float:
        return float(1.0 / (1.0 + np.exp(-(self.slope * logit(score) + self.bias))))

    @classmethod
    def shipped(cls, face_model: str) -> VideoCalibration | None:
        """The calibration fitted for this face model, or None (track scores stay frame-calibrated)."""
        entry = _shipped_entry(VIDEO_CALIBRATION_FILE, face_model=face_model)
        if entry is None:
            return None
        return cls(face_model, float(entry["slope"]), float(entry["bias"]), entry.get("thresholds"))


def _shipped_entry(file: str, **key: str) -> dict | None:
    """The entry of weights/`file` ({"fits": [...]}) whose fields equal `key`, or None."""
    path = resources.files(WEIGHTS_PACKAGE).joinpath(file)
    if not path.is_file():
        return None
    for entry in json.loads(path.read_text()).get("fits", []):
        if all(entry.get(k) == v for k, v in key.items()):
            return entry
    return None


@dataclass(frozen=True)
class ModalityWeights:
    """How faces ("video") and sound ("audio") of one video are combined (see `fuse_modalities`)."""

    video: float = 0.5
    audio: float = 0.5
    confident: float = 0.9

    def __post_init__(self) -> None:
        if self.video < 0 or self.audio < 0 or self.video + self.audio <= 0:
            raise ValueError("modality weights must be >= 0 and not both 0")
        if not 0.5 < self.confident <= 1.0:
            raise ValueError("confident must be in (0.5, 1]")


def fuse_modalities(scores: Mapping[str, float], weights: ModalityWeights) -> tuple[float, dict[str, float]]:
    """Fused P(fake) of the scored modalities and the weight each got (summing to 1).

    Max when a modality is confidently fake (weight 1 to it), else the weighted average. A
    modality whose configured weight is 0 is reported but does not count, unless nothing else
    was scored.
    """
    if not scores:
        raise ValueError("no modality score to fuse")
    configured = {name: float(getattr(weights, name)) for name in scores}
    counted = {name: w for name, w in configured.items() if w > 0} or dict.fromkeys(scores, 1.0)
    confident = [name for name in counted if scores[name] >= weights.confident]
    if confident:
        best = max(confident, key=lambda name: scores[name])
        return float(scores[best]), {name: 1.0 if name == best else 0.0 for name in scores}
    total = sum(counted.values())
    share = {name: counted.get(name, 0.0) / total for name in scores}
    return float(sum(scores[name] * w for name, w in share.items())), share
