"""Detection: pipelines per media kind, fusion, verdicts and the Result contract."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from fakescope.detect.options import DetectorOptions

__all__ = ["Detector", "DetectorOptions", "DetectorScore", "FaceTrack", "Result", "ResultCache", "Segment", "Thresholds"]

if TYPE_CHECKING:
    from fakescope.detect.cache import ResultCache
    from fakescope.detect.detector import Detector
    from fakescope.detect.result import DetectorScore, FaceTrack, Result, Segment
    from fakescope.detect.verdict import Thresholds

_HOMES = {
    "Detector": "detector",
    "ResultCache": "cache",
    "DetectorScore": "result",
    "FaceTrack": "result",
    "Result": "result",
    "Segment": "result",
    "Thresholds": "verdict",
}


def __getattr__(name: str) -> Any:
    # Lazy: the service settings and `fakescope --help` import detect.options without paying for torch.
    if name in _HOMES:
        return getattr(import_module(f"fakescope.detect.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'fakescope.detect' has no attribute {name!r}")
