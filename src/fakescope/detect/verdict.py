"""From calibrated P(fake) to a verdict a person reads: authentic / suspicious / manipulated."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fakescope.constants import Verdict


@dataclass(frozen=True)
class Thresholds:
    """P(fake) below `suspicious` is authentic; at or above `manipulated` is manipulated.

    The fixed bands sit where a face model's val crops were mostly real (below) and mostly fake
    (above), while in between it was little better than a guess, so there we say "suspicious"
    instead of guessing (figures: docs/RESULTS.md, Verdict bands).
    A model card may carry bands chosen on validation data instead (`from_card`).
    """

    suspicious: float = 0.35
    manipulated: float = 0.65

    def __post_init__(self) -> None:
        if not 0.0 <= self.suspicious <= self.manipulated <= 1.0:
            raise ValueError("thresholds must satisfy 0 <= suspicious <= manipulated <= 1")

    @classmethod
    def from_card(cls, card: Mapping[str, float]) -> Thresholds:
        """A card's `{"real_below": p, "fake_at_or_above": q, ...}` (checked when the card is read)."""
        return cls(suspicious=float(card["real_below"]), manipulated=float(card["fake_at_or_above"]))

    def verdict(self, score: float) -> Verdict:
        if score >= self.manipulated:
            return "manipulated"
        if score >= self.suspicious:
            return "suspicious"
        return "authentic"


def agreed_thresholds(cards: Sequence[Mapping[str, float] | None]) -> Thresholds:
    """The bands of the cards of every model behind a score, if they all have the same; else the defaults.

    One model (videos, or images without an image model): its card's bands when it has them.
    Several models (a fused image score): a band chosen for one detector's scores on its own
    validation set promises nothing about the max of two detectors, so the card bands are used
    only when every card carries the same ones; otherwise the default bands apply.
    """
    bands = {Thresholds.from_card(card) for card in cards if card is not None}
    if cards and len(bands) == 1 and all(card is not None for card in cards):
        return bands.pop()
    return Thresholds()
