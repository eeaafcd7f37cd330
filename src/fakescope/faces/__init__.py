"""Faces: find them (yuface, MTCNN, Haar fallback), on every k-th frame of a clip, follow them across frames, crop them."""

from fakescope.faces.crop import center_crop, crop_face
from fakescope.faces.detectors import (
    DEFAULT_FACE_DETECTOR,
    FACE_DETECTORS,
    FaceDetector,
    FallbackFaceDetector,
    HaarFaceDetector,
    MTCNNFaceDetector,
    YuFaceDetector,
    create_face_detector,
)
from fakescope.faces.sparse import DEFAULT_DETECT_EVERY, detect_sparse
from fakescope.faces.tracking import Detection, Track, box_iou, filter_tracks, track_faces
from fakescope.faces.types import Face

__all__ = [
    "DEFAULT_DETECT_EVERY",
    "DEFAULT_FACE_DETECTOR",
    "FACE_DETECTORS",
    "Detection",
    "Face",
    "FaceDetector",
    "FallbackFaceDetector",
    "HaarFaceDetector",
    "MTCNNFaceDetector",
    "Track",
    "YuFaceDetector",
    "box_iou",
    "center_crop",
    "create_face_detector",
    "crop_face",
    "detect_sparse",
    "filter_tracks",
    "track_faces",
]
