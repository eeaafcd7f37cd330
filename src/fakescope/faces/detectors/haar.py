"""OpenCV's Haar cascade: the face detector that needs neither torch nor shipped weights."""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

import cv2
import numpy as np

from fakescope.faces.detectors.base import ScaledImage, keep_faces, shrink, to_face
from fakescope.faces.types import Face


class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascade: no torch, no weights to ship, a last resort.

    It misses profiles and fires on textures more than MTCNN. `score` is the logistic of
    the cascade's last-stage sum (`levelWeights`); `min_score=0.9` drops about half its
    background hits for few of its real faces, so more clips keep a single track after
    filtering (see docs/RESULTS.md, face detectors).
    """

    name = "haar"

    def __init__(
        self,
        *,
        max_side: int = 640,
        min_face_size: int = 32,
        min_score: float = 0.9,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        cascade: str = "haarcascade_frontalface_default.xml",
    ) -> None:
        if max_side < 32:
            raise ValueError(f"max_side must be >= 32, got {max_side}")
        self.max_side = max_side
        self.min_face_size = min_face_size
        self.min_score = min_score
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.cascade = cascade
        self._classifier: cv2.CascadeClassifier | None = None
        self._lock = threading.Lock()

    def load(self) -> None:
        """Read the cascade file now; raises OSError when OpenCV ships no such cascade."""
        with self._lock:
            if self._classifier is None:
                path = cv2.data.haarcascades + self.cascade
                classifier = cv2.CascadeClassifier(path)
                if classifier.empty():
                    raise OSError(f"cannot load Haar cascade {path}")
                self._classifier = classifier

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        self.load()
        return [self._detect_one(shrink(image, self.max_side)) for image in images]

    def _detect_one(self, scaled: ScaledImage) -> list[Face]:
        assert self._classifier is not None
        net_min = max(1, math.floor(self.min_face_size / max(scaled.scale_x, scaled.scale_y)))
        grey = cv2.equalizeHist(cv2.cvtColor(scaled.image, cv2.COLOR_RGB2GRAY))
        rects, _, weights = self._classifier.detectMultiScale3(
            grey,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(net_min, net_min),
            outputRejectLevels=True,
        )
        faces = [
            to_face((x, y, x + w, y + h), 1.0 / (1.0 + math.exp(-float(weight))), None, scaled)
            for (x, y, w, h), weight in zip(rects, np.ravel(weights), strict=True)
        ]
        return keep_faces(faces, min_face_size=self.min_face_size, min_score=self.min_score)
