"""From calibrated P(fake) to a verdict a person reads: authentic / suspicious / manipulated."""

from __future__ import annotations

from dataclasses import dataclass

from fakescope.detect.result import Verdict


@dataclass(frozen=True)
class Thresholds:
    """P(fake) below `suspicious` is authentic; at or above `manipulated` is manipulated.

    The band between them is where the default model is right less than ~75% of the time on
    dfdc_faces val, so we say "suspicious" instead of guessing.
    """

    suspicious: float = 0.35
    manipulated: float = 0.65

    def __post_init__(self) -> None:
        if not 0.0 <= self.suspicious <= self.manipulated <= 1.0:
            raise ValueError("thresholds must satisfy 0 <= suspicious <= manipulated <= 1")

    def verdict(self, score: float) -> Verdict:
        if score >= self.manipulated:
            return "manipulated"
        if score >= self.suspicious:
            return "suspicious"
        return "authentic"
