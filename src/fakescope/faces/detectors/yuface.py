"""yuface (libfacedetection's YuNet): a small CNN with its weights compiled into the wheel, no torch.

`import yuface` below is the wheel (imports are absolute), not this module.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np

from fakescope.faces.detectors.base import ScaledImage, keep_faces, shrink, to_face
from fakescope.faces.detectors.openmp import openmp_runtimes, openmp_threads
from fakescope.faces.types import Face

# The yuface wheel warns that detection may degrade on images larger than this.
_YUFACE_MAX_SIDE = 960


class YuFaceDetector:
    """libfacedetection (the `yuface` wheel: a small CNN with its weights compiled in, no torch).

    It reads BGR, so the shrunk image is converted (cheap at 640 px). Scores are the
    library's 0-100 confidences over 100. Each image is one call; the library spreads a
    call over OpenMP threads: `threads` per call (None: the OpenMP default, `OMP_NUM_THREADS`
    or one per core). One is the default: two were no faster on idle cores, and with the
    cores busy elsewhere OpenMP threads spinning while they wait made two several times
    slower (see docs/RESULTS.md, face detectors).
    `min_score=0.6` lies between the scores of the labelled clips' faces and of other hits.
    `min_face_size` is in the original pixels; faces below about 10 px in the shrunk image
    are not found, so `max_side` bounds the smallest face as for MTCNN.
    """

    name = "yuface"

    def __init__(
        self,
        *,
        max_side: int = 640,
        min_face_size: int = 32,
        min_score: float = 0.6,
        threads: int | None = 1,
    ) -> None:
        if not 32 <= max_side <= _YUFACE_MAX_SIDE:
            raise ValueError(f"max_side must be in [32, {_YUFACE_MAX_SIDE}], got {max_side}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.max_side = max_side
        self.min_face_size = min_face_size
        self.min_score = min_score
        self.threads = threads
        self._detect: Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None
        self._runtimes: list[Any] = []
        self._lock = threading.Lock()

    def load(self) -> None:
        """Import the library now; raises ImportError when the `yuface` wheel is missing."""
        with self._lock:
            if self._detect is None:
                import torch  # noqa: F401 - first, so the OpenMP runtime yuface's calls bind to is loaded and listed
                import yuface

                self._runtimes = openmp_runtimes(yuface)
                self._detect = yuface.detect

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        self.load()
        if self.threads is None:
            return [self._detect_one(shrink(image, self.max_side)) for image in images]
        with openmp_threads(self.threads, self._runtimes):
            return [self._detect_one(shrink(image, self.max_side)) for image in images]

    def _detect_one(self, scaled: ScaledImage) -> list[Face]:
        assert self._detect is not None
        bgr = cv2.cvtColor(scaled.image, cv2.COLOR_RGB2BGR)
        confs, boxes, points = self._detect(bgr, conf=self.min_score)
        faces = [
            to_face((x, y, x + w, y + h), float(conf) / 100.0, pts.reshape(5, 2), scaled)
            for conf, (x, y, w, h), pts in zip(confs.tolist(), boxes.tolist(), np.asarray(points, dtype=np.float64), strict=True)
        ]
        return keep_faces(faces, min_face_size=self.min_face_size, min_score=self.min_score)
