"""Faces: find them (MTCNN, Haar fallback), follow them across frames, crop them."""

from fakescope.faces.crop import center_crop, crop_face
from fakescope.faces.detectors import (
    FACE_DETECTORS,
    FaceDetector,
    FallbackFaceDetector,
    HaarFaceDetector,
    MTCNNFaceDetector,
    create_face_detector,
)
from fakescope.faces.tracking import Detection, Track, box_iou, filter_tracks, track_faces
from fakescope.faces.types import Face

__all__ = [
    "FACE_DETECTORS",
    "Detection",
    "Face",
    "FaceDetector",
    "FallbackFaceDetector",
    "HaarFaceDetector",
    "MTCNNFaceDetector",
    "Track",
    "box_iou",
    "center_crop",
    "create_face_detector",
    "crop_face",
    "filter_tracks",
    "track_faces",
]
