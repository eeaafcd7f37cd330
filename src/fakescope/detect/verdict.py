"""From calibrated P(fake) to a verdict a person reads: authentic / suspicious / manipulated."""

from __future__ import annotations

from dataclasses import dataclass

from fakescope.detect.result import Verdict


@dataclass(frozen=True)
class Thresholds:
    """P(fake) below `suspicious` is authentic; at or above `manipulated` is manipulated.

    Measured for the default model on dfdc_faces val (1,200 crops): 86% of crops scored
    below 0.35 are real and 87% of crops scored 0.65 or more are fake, while in between the
    model is right only 54% of the time, so there we say "suspicious" instead of guessing.
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
