"""Detection: pipelines per media kind, fusion, verdicts and the Result contract."""

from fakescope.detect.cache import ResultCache
from fakescope.detect.detector import Detector
from fakescope.detect.result import DetectorScore, FaceTrack, Result, Segment
from fakescope.detect.verdict import Thresholds

__all__ = ["Detector", "DetectorScore", "FaceTrack", "Result", "ResultCache", "Segment", "Thresholds"]
