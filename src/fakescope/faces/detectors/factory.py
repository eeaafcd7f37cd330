"""Build a face detector by name, each backed by the next when its package is missing."""

from __future__ import annotations

from typing import Any

from fakescope.constants import DEFAULT_FACE_DETECTOR
from fakescope.errors import ModelError
from fakescope.faces.detectors.base import FACE_DETECTORS, FaceDetector
from fakescope.faces.detectors.fallback import FallbackFaceDetector
from fakescope.faces.detectors.haar import HaarFaceDetector
from fakescope.faces.detectors.mtcnn import MTCNNFaceDetector
from fakescope.faces.detectors.yuface import YuFaceDetector

# Options that mean the same to every face detector, so they also configure the fallbacks.
_SHARED = ("max_side", "min_face_size")


def create_face_detector(name: str = DEFAULT_FACE_DETECTOR, **kwargs: Any) -> FaceDetector:
    """Face detector by name: "yuface" (the default), "mtcnn" or "haar".

    Each falls back to the next when its package is missing: yuface to MTCNN, MTCNN to Haar;
    `max_side` and `min_face_size` also configure the fallbacks (scores are not comparable
    across face detectors, so `min_score` and the rest do not).
    """
    shared = {k: v for k, v in kwargs.items() if k in _SHARED}
    if name == "yuface":
        return FallbackFaceDetector(YuFaceDetector(**kwargs), create_face_detector("mtcnn", **shared))
    if name == "mtcnn":
        return FallbackFaceDetector(MTCNNFaceDetector(**kwargs), HaarFaceDetector(**shared))
    if name == "haar":
        return HaarFaceDetector(**kwargs)
    raise ModelError(f"unknown face detector {name!r} (choose one of: {', '.join(FACE_DETECTORS)})")
