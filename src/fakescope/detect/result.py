"""The Result contract shared by the CLI (--json), the Python API, scans and the service."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field

from fakescope.constants import MediaKind, Modality, Verdict

Status = Literal["ok", "not_applicable", "error"]


class DetectorScore(BaseModel):
    """One detector's contribution to the fused score."""

    name: str
    score: float = Field(description="P(fake) from this detector, calibrated")
    weight: float = Field(description="weight of this detector in the fused score")


class ModalityScore(BaseModel):
    """What one kind of evidence (faces/pictures, or the sound) said, and how much it counted."""

    modality: Modality
    score: float | None = Field(None, description="P(fake) from this modality; null when it was skipped")
    weight: float = Field(0.0, description="weight of this modality in the fused score")
    skipped: str | None = Field(None, description="why this modality was not scored, e.g. 'no audio track'")


class FaceTrack(BaseModel):
    """One identity followed across frames (a single entry for an image)."""

    track_id: int
    score: float = Field(description="P(fake) of this identity (fusion of its frame scores)")
    frames: list[tuple[float, float, list[float]]] = Field(
        description="(timestamp in s, P(fake), [x, y, w, h] in pixels of the upright frame) per sampled frame"
    )
    attention: list[float] | None = Field(
        None,
        description="temporal models: each frame's attention relative to an even share (1.0), the frames that drove the score",
    )


class Segment(BaseModel):
    """Score of a stretch of the media: per-second timeline of the faces in a video, or one
    scored audio window (4 s, overlapping by 2 s) of a recording or of a video's sound."""

    start: float
    end: float
    score: float
    modality: Literal["video", "audio"] = "video"


class Result(BaseModel):
    """What fakescope says about one file. `score` is calibrated P(fake)."""

    file: str
    sha256: str | None = None
    media_type: MediaKind | None = None
    status: Status = "ok"
    reason: str | None = Field(None, description="why the status is not ok, in words a person understands")
    verdict: Verdict | None = None
    score: float | None = None
    label: Literal["REAL", "FAKE"] | None = None
    probabilities: dict[str, float] | None = None
    detectors: list[DetectorScore] = Field(default_factory=list)
    modalities: list[ModalityScore] = Field(default_factory=list)
    faces: list[FaceTrack] = Field(default_factory=list)
    segments: list[Segment] = Field(default_factory=list)
    duration: float | None = Field(None, description="media duration in seconds (videos and audio)")
    frames_sampled: int = 0
    processing_time: float = 0.0
    cached: bool = Field(False, description="answered from the result cache: the same content was scored before")
    timings: dict[str, float] = Field(
        default_factory=dict, description="seconds per stage: decode, faces, model, audio decode, audio model, fusion"
    )
    device: str = "cpu"
    model_versions: dict[str, str] = Field(default_factory=dict)
    timestamp: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def faces_found(self) -> int:
        return len(self.faces)
