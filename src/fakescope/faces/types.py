"""The one face record every face detector returns, so tracking and cropping need no face detector."""

from __future__ import annotations

from dataclasses import dataclass

Box = tuple[float, float, float, float]
Point = tuple[float, float]


@dataclass(frozen=True)
class Face:
    """A face found in one image.

    `box` is `(x1, y1, x2, y2)` in pixels of the image given to the face detector (not of a
    downscaled copy). `landmarks` are the face detector's key points (MTCNN: eyes, nose, mouth
    corners) in the same pixels, or None when the face detector has none.
    """

    box: Box
    score: float
    landmarks: tuple[Point, ...] | None = None

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    @property
    def area(self) -> float:
        return max(self.width, 0.0) * max(self.height, 0.0)

    @property
    def center(self) -> Point:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)

    def as_xywh(self, ndigits: int = 1) -> list[float]:
        """`[x, y, w, h]` rounded for JSON (the Result contract's face box)."""
        x1, y1 = self.box[0], self.box[1]
        return [round(float(v), ndigits) for v in (x1, y1, self.width, self.height)]
