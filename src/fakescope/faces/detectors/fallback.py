"""A face detector that falls back to another when its package or weights are missing."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

import numpy as np

from fakescope.faces.detectors.base import FaceDetector
from fakescope.faces.types import Face

log = logging.getLogger(__name__)

# A face detector, or a zero-argument factory that builds one (a class counts as one).
FaceDetectorSource = FaceDetector | Callable[[], FaceDetector]


def _build(source: FaceDetectorSource) -> FaceDetector:
    is_factory = isinstance(source, type) or not hasattr(source, "detect")
    face_detector: FaceDetector = source() if is_factory else source  # type: ignore[operator,assignment]
    load = getattr(face_detector, "load", None)
    if callable(load):
        load()
    return face_detector


class FallbackFaceDetector:
    """Use `primary`; if it cannot be built (package or weights missing) use `fallback`.

    Either may be a face detector or a zero-argument factory. The choice is made once, on
    first use, with one warning; errors raised while detecting are not hidden.
    """

    def __init__(self, primary: FaceDetectorSource, fallback: FaceDetectorSource) -> None:
        self._primary = primary
        self._fallback = fallback
        self._active: FaceDetector | None = None
        self._lock = threading.Lock()

    @property
    def active(self) -> FaceDetector:
        """The face detector in use (builds it on first access)."""
        return self._resolve()

    def _resolve(self) -> FaceDetector:
        with self._lock:
            if self._active is None:
                try:
                    self._active = _build(self._primary)
                except (ImportError, OSError, RuntimeError) as err:
                    fallback = _build(self._fallback)
                    log.warning(
                        "primary face detector unavailable (%s: %s); using %r instead",
                        type(err).__name__,
                        err,
                        fallback.name,
                    )
                    self._active = fallback
            return self._active

    @property
    def name(self) -> str:
        return self.active.name

    def load(self) -> None:
        self._resolve()

    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        return self.active.detect(images)
